package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/server"
)

func everySecond() []connectors.SourceConfig {
	return []connectors.SourceConfig{{Name: "tick", Kind: "schedule", Fields: map[string]any{"interval": "1s", "type": "sched.tick", "data": `{"n":1}`}}}
}

// A schedule keeps the record of its last tick in the store: on the
// embedded store, whose restart forgets it with the ticks not yet
// delivered, it is refused unless volatile sources are allowed.
func TestScheduleRefusedOnTheEmbeddedStore(t *testing.T) {
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Sources: everySecond(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := server.Check(cfg)
	require.ErrorIs(t, err, server.ErrVolatileSource)
	require.ErrorContains(t, err, `sources[0] "tick" (schedule)`)
	require.ErrorContains(t, err, "ticks published but not yet delivered")
	cfg.AllowVolatileSources = true
	require.NoError(t, server.Check(cfg))
}

// Two servers on one store, both running the same schedule: each tick is
// delivered once, consecutive, and source list shows the next tick.
func TestScheduleTwoServersOneTickEach(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		rec := &received{}
		fn := startFunction(t, recorder(rec))
		withSource := func(c *server.Config) { c.Sources = everySecond() }
		a := startServer(t, b, withSource)
		a.apply(t, fmt.Sprintf("name: ticks\nfilter: {attributes: {type: sched.tick}}\ntarget: {grpc: %q}\n", fn))
		startServer(t, b, withSource)
		var list *switchyardv1.ListSourcesResponse
		testenv.Eventually(t, 10*time.Second, func() bool {
			var err error
			list, err = a.client.Sources().ListSources(context.Background(), &switchyardv1.ListSourcesRequest{})
			require.NoError(t, err)
			return len(list.GetSources()) == 1 && list.GetSources()[0].GetNextFireTime() != nil
		}, "source list shows the next tick")
		next := list.GetSources()[0].GetNextFireTime().AsTime()
		require.WithinDuration(t, time.Now(), next, 2*time.Second)
		require.Zero(t, next.Nanosecond(), "a tick is on a whole second")

		testenv.Eventually(t, 15*time.Second, func() bool { return rec.count() >= 4 }, "ticks delivered")
		rec.mu.Lock()
		var ticks []time.Time
		seen := map[string]bool{}
		for _, ev := range rec.events {
			require.False(t, seen[ev.ID()], "tick %s delivered twice", ev.ID())
			seen[ev.ID()] = true
			ticks = append(ticks, ev.Time())
			require.JSONEq(t, `{"n":1}`, string(ev.Data()))
		}
		rec.mu.Unlock()
		sort.Slice(ticks, func(i, j int) bool { return ticks[i].Before(ticks[j]) })
		for i := 1; i < len(ticks); i++ {
			require.Equal(t, time.Second, ticks[i].Sub(ticks[i-1]))
		}
	})
}
