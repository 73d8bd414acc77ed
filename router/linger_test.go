package router

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// Attempts that finish one at a time are recorded together: the completer
// holds them until a batched claim's worth (an eighth of max_concurrency,
// 8 by default) finished, and then records them in one script call. The
// linger here never runs out (an hour), so what is held and when it is
// recorded depends on nothing but the count. A shutdown records what is
// still held.
func TestFinishedAttemptsShareOneRecording(t *testing.T) {
	b := testenv.Real(t)
	acks := &ackCounter{}
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(b.URL, "/0"), "redis://")})
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(acks)
	var inv *countingInvoker
	r := startRouter(t, rdb, b.Prefix, func(c *Config, i *delivery.Invoker) {
		c.AckLinger = time.Hour
		inv = (*i).(*countingInvoker)
	})
	_, _, err := r.PutTrigger(t.Context(), testTrigger("l", "linger"), store.PutApply, 0)
	require.NoError(t, err)

	publish := func(i int) {
		t.Helper()
		id := "e" + strconv.Itoa(i)
		_, err := r.Publish(t.Context(), []*pb.CloudEvent{event(id, "linger")})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return inv.count("l", id) == 1 }, 10*time.Second, 2*time.Millisecond, "event %s delivered", id)
	}
	stats := func() store.QueueStats {
		t.Helper()
		st, err := r.Store().Stats(t.Context(), "l")
		require.NoError(t, err)
		return st
	}
	for i := range 7 {
		publish(i)
	}
	require.Zero(t, acks.n.Load(), "seven attempts finished: none recorded yet")
	require.EqualValues(t, 7, stats().InFlight, "the attempts held stay leased")

	publish(7)
	require.Eventually(t, func() bool { return stats().InFlight == 0 }, 10*time.Second, 5*time.Millisecond, "the eighth outcome records the batch")
	require.EqualValues(t, 1, acks.n.Load(), "eight attempts recorded by one script call")
	require.Equal(t, "8", stats().Counters["delivered"])

	publish(8)
	require.EqualValues(t, 1, stats().InFlight)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	st := stats()
	require.Zero(t, st.InFlight, "a shutdown records the outcomes held")
	require.Equal(t, "9", st.Counters["delivered"])
	require.EqualValues(t, 2, acks.n.Load())
}

// A trigger of fewer than 16 slots never lingers: holding a finished
// attempt would hold one of its few slots.
func TestLingerMax(t *testing.T) {
	for conc, want := range map[int]int{1: 1, 15: 1, 16: 2, 64: 8, 10_000: DefaultClaimBatch} {
		t.Run(strconv.Itoa(conc), func(t *testing.T) {
			d, _ := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, delivery.Result{})
			d.r.cfg.AckLinger, d.r.cfg.ClaimBatch, d.r.intakeCtx = time.Hour, DefaultClaimBatch, t.Context()
			tr, err := trigger.Compile(trigger.Spec{Name: "t", Target: trigger.Target{GRPC: "127.0.0.1:1"}, Delivery: trigger.Delivery{MaxConcurrency: conc}})
			require.NoError(t, err)
			d.trig.Store(tr)
			require.Equal(t, want, d.lingerMax())
			d.moreWork.Store(true)
			require.Zero(t, d.lingerMax(), "a claim waits for slots")
			d.moreWork.Store(false)
			d.r.cfg.AckLinger = -1
			require.Zero(t, d.lingerMax(), "lingering off")
		})
	}
}

// ackCounter counts the acknowledging script calls (EVALSHA whose first
// argument after the nine queue keys is 0), sent alone or pipelined.
type ackCounter struct{ n atomic.Int64 }

func (c *ackCounter) count(cmd redis.Cmder) {
	a := cmd.Args()
	if cmd.Name() == "evalsha" && len(a) > 13 && fmt.Sprint(a[2]) == "9" && fmt.Sprint(a[12]) == "0" {
		c.n.Add(1)
	}
}

func (c *ackCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *ackCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}
func (c *ackCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}
