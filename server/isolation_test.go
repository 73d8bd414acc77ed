package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// TestStalledTriggerDoesNotDelayOthers fills a stalled function's queue and
// checks a healthy trigger on the same events keeps delivering all of them,
// while the stalled one holds only max_concurrency attempts in flight.
func TestStalledTriggerDoesNotDelayOthers(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		release := make(chan struct{})
		var stalledCalls atomic.Int64
		stalled := func(ctx context.Context, ev event.Event) (function.Result, error) {
			stalledCalls.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return function.Result{}, nil
		}
		var healthy atomic.Int64
		ok := func(ctx context.Context, ev event.Event) (function.Result, error) {
			healthy.Add(1)
			return function.Result{}, nil
		}
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: stalled
target: {grpc: "%s"}
delivery: {max_concurrency: 2, timeout: 1m}
---
name: healthy
target: {grpc: "%s"}
`, startFunction(t, stalled), startFunction(t, ok)))
		t.Cleanup(func() { close(release) }) // before the function servers stop
		const n = 500
		var evs []event.Event
		for i := range n {
			evs = append(evs, newEvent(fmt.Sprintf("i%d", i), "any"))
		}
		for i := 0; i < n; i += 100 {
			require.NoError(t, e.client.PublishBatch(context.Background(), evs[i:i+100]))
		}
		testenv.Eventually(t, 20*time.Second, func() bool { return healthy.Load() == n }, "healthy trigger got all %d (has %d)", n, healthy.Load())
		st, err := e.client.TriggerStats(context.Background(), "stalled")
		require.NoError(t, err)
		require.EqualValues(t, 2, st[0].GetInFlight(), "the stalled target holds only its concurrency")
		require.EqualValues(t, n-2, st[0].GetQueued(), "the rest waits in the store")
		require.EqualValues(t, 2, stalledCalls.Load())
	})
}
