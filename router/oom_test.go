package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// The worst case of a full Redis: the ingest log holds the memory and the
// queues are empty (the fan-out fell behind while deliveries kept up), so
// nothing is left to deliver that would free memory. A router starts on
// such a Redis, fans the log out into the empty queues all the same
// (bounded: only into queues holding little), delivers every event to
// both triggers and empties the log; publishing is refused with
// ErrStoreFull meanwhile and works once memory is back.
func TestFullLogDrainsIntoEmptyQueues(t *testing.T) {
	b := testenv.StartRedis(t, "--maxmemory-policy", "noeviction")
	ctx := context.Background()
	s := store.New(b.Client, b.Prefix)
	// An instance defines the triggers and goes away; the events it
	// accepted wait in the ingest log.
	first, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler)}, b.Client, &ackingInvoker{got: map[string]int{}})
	require.NoError(t, err)
	require.NoError(t, first.Start(ctx))
	for _, name := range []string{"a", "b"} {
		c, err := trigger.Compile(trigger.Spec{Name: name, Target: trigger.Target{URL: "http://fn.example/" + name},
			Filter: filter.Spec{Attributes: map[string]string{"type": "full"}}})
		require.NoError(t, err)
		_, _, err = first.PutTrigger(ctx, trigger.ToProto(c.Spec), store.PutApply, 0)
		require.NoError(t, err)
	}
	require.NoError(t, first.Shutdown(ctx))
	const n = 300
	var recs []store.LogRecord
	for i := range n {
		raw, err := proto.Marshal(&pb.CloudEvent{Id: fmt.Sprintf("ev-%d", i), Source: "/t", SpecVersion: "1.0", Type: "full",
			Data: &pb.CloudEvent_TextData{TextData: strings.Repeat("x", 4096)}})
		require.NoError(t, err)
		recs = append(recs, store.LogRecord{Event: raw, Triggers: []string{"a", "b"}})
	}
	require.NoError(t, s.AppendLog(ctx, recs))
	require.NoError(t, b.Client.ConfigSet(ctx, "maxmemory", "1").Err()) // full, whatever is freed

	inv := &ackingInvoker{got: map[string]int{}}
	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler), FanoutBatch: 64}, b.Client, inv)
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx), "a router starts on a full Redis")
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(sctx))
	})
	_, err = r.Publish(ctx, []*pb.CloudEvent{{Id: "new", Source: "/t", SpecVersion: "1.0", Type: "full"}})
	require.True(t, errors.Is(err, ErrStoreFull), "%v", err)
	require.ErrorIs(t, r.StoreFull(ctx), ErrStoreFull)

	for i := range n {
		for _, tr := range []string{"a", "b"} {
			key := fmt.Sprintf("%s/ev-%d", tr, i)
			testenv.Eventually(t, 30*time.Second, func() bool { return inv.delivered(key) }, "%s delivered", key)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		l, err := s.LogLength(ctx)
		return err == nil && l == 0
	}, "the log emptied")

	require.NoError(t, b.Client.ConfigSet(ctx, "maxmemory", "0").Err())
	_, err = r.Publish(ctx, []*pb.CloudEvent{{Id: "new", Source: "/t", SpecVersion: "1.0", Type: "full"}})
	require.NoError(t, err)
	require.NoError(t, r.StoreFull(ctx))
	testenv.Eventually(t, 10*time.Second, func() bool { return inv.delivered("a/new") && inv.delivered("b/new") }, "the new event delivered")
}
