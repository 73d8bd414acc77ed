package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// gauge is a function that records the most calls it ever had at once.
type gauge struct {
	cur, peak atomic.Int64
	mu        sync.Mutex
	seen      map[string]int
	delay     time.Duration
}

func (g *gauge) handle(ctx context.Context, ev event.Event) (function.Result, error) {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer g.cur.Add(-1)
	select {
	case <-time.After(g.delay):
	case <-ctx.Done():
		return function.Result{}, ctx.Err()
	}
	g.mu.Lock()
	g.seen[ev.ID()]++
	g.mu.Unlock()
	return function.Result{}, nil
}

func (g *gauge) unique() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// TestConcurrencyLimitIsClusterWide runs three switchyard processes on one
// Redis: a function with max_concurrency 4 never sees a fifth concurrent call.
func TestConcurrencyLimitIsClusterWide(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	g := &gauge{seen: map[string]int{}, delay: 20 * time.Millisecond}
	serveFunction(t, fnAddr, g.handle)
	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", prefix}
	procs := []*proc{startServe(t, args...), startServe(t, args...), startServe(t, args...)}
	applyTrigger(t, procs[0].GRPC, fmt.Sprintf(`
name: limited
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 4}
`, fnAddr))
	// Every instance picks the new trigger up live: probe each until an
	// event published there is routed.
	probes := 0
	for _, p := range procs {
		testenv.Eventually(t, 10*time.Second, func() bool {
			probes++
			return postOne(t, p.HTTP, fmt.Sprintf("probe-%d", probes)) == 1
		}, "trigger live on %s", p.HTTP)
	}
	const total = 300
	for i := 0; i < total; i += 50 {
		postBatch(t, procs[(i/50)%3].HTTP, i, 50)
	}
	testenv.Eventually(t, 60*time.Second, func() bool { return g.unique() >= total+3 }, "all delivered (have %d)", g.unique())
	t.Logf("cluster-wide limit: peak concurrent calls %d with max_concurrency 4 over 3 instances", g.peak.Load())
	require.LessOrEqual(t, g.peak.Load(), int64(4))
	require.GreaterOrEqual(t, g.peak.Load(), int64(2), "the instances did deliver concurrently")
}
