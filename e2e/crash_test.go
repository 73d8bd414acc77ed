package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// counter is a function endpoint that counts deliveries per event id, and
// first attempts (attempt 1: a queued event's first delivery) per event id.
type counter struct {
	mu     sync.Mutex
	seen   map[string]int
	firsts map[string]int
	delay  time.Duration
}

func (c *counter) handle(ctx context.Context, ev event.Event) (function.Result, error) {
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return function.Result{}, ctx.Err()
		}
	}
	c.mu.Lock()
	c.seen[ev.ID()]++
	if info, ok := function.FromContext(ctx); ok && info.Attempt <= 1 {
		if c.firsts == nil {
			c.firsts = map[string]int{}
		}
		c.firsts[ev.ID()]++
	}
	c.mu.Unlock()
	return function.Result{}, nil
}

// ingested counts first attempts beyond one per event id: events queued
// more than once.
func (c *counter) ingested() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := 0
	for _, n := range c.firsts {
		d += n - 1
	}
	return d
}

func (c *counter) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *counter) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := 0
	for _, n := range c.seen {
		d += n - 1
	}
	return d
}

func serveFunction(t *testing.T, addr string, h function.Handler) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = function.ServeListener(ctx, lis, h) }()
	t.Cleanup(func() { cancel(); <-done })
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := l.Addr().String()
	require.NoError(t, l.Close())
	return a
}

func postBatch(t *testing.T, httpAddr string, from, n int) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("[")
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"ev-%d","source":"/crash","type":"crash.test","data":{"i":%d}}`, i, i)
	}
	b.WriteString("]")
	resp, err := http.Post("http://"+httpAddr+"/events", "application/cloudevents-batch+json", &b)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// postOne publishes one structured event and returns how many triggers it
// was routed to.
func postOne(t *testing.T, httpAddr, id string) int {
	t.Helper()
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/crash","type":"crash.test"}`, id)
	resp, err := http.Post("http://"+httpAddr+"/events", "application/cloudevents+json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var out struct{ Routed int }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Routed
}

func applyTrigger(t *testing.T, grpcAddr, yaml string) {
	t.Helper()
	_, err := run(t, strings.NewReader(yaml), "trigger", "apply", "-f", "-", "--server", grpcAddr)
	require.NoError(t, err)
}

// TestCrashBeforeDeliveryLosesNothing accepts events, kills the server with
// SIGKILL while most of them wait (the function is slow, concurrency 2) and
// some are in flight, restarts it on the same Redis and counts every event.
// With one matching trigger the events are queued directly; with two they go
// through the ingest log and are fanned out to both queues.
func TestCrashBeforeDeliveryLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		triggers int
	}{{"one trigger, queued directly", 1}, {"two triggers, through the ingest log", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("redis", func(t *testing.T) {
				testenv.Real(t) // fails clearly when Redis is down
				crashTest(t, tc.triggers, testenv.RedisURL(), testenv.PrefixT(t))
			})
			t.Run("cluster", func(t *testing.T) {
				b := testenv.Cluster(t)
				crashTest(t, tc.triggers, b.URL, b.Prefix)
			})
		})
	}
}

func crashTest(t *testing.T, triggers int, redisURL, prefix string) {
	counters := make([]*counter, triggers)
	fnAddrs := make([]string, triggers)
	for i := range counters {
		counters[i] = &counter{seen: map[string]int{}, delay: 20 * time.Millisecond}
		fnAddrs[i] = freeAddr(t)
		serveFunction(t, fnAddrs[i], counters[i].handle)
	}
	delivered := func() (least, dups int) {
		least = -1
		for _, c := range counters {
			if u := c.unique(); least < 0 || u < least {
				least = u
			}
			dups += c.duplicates()
		}
		return least, dups
	}

	args := []string{"--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	for i, addr := range fnAddrs {
		applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: crash-%d
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 2, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, i, addr))
	}
	const total = 1000
	for i := 0; i < total; i += 100 {
		postBatch(t, a.HTTP, i, 100)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { n, _ := delivered(); return n >= 20 }, "first deliveries")
	a.Kill()
	atKill, _ := delivered()
	require.Less(t, atKill, total, "the crash must happen before delivery completes")

	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { n, _ := delivered(); return n == total },
		"all %d events delivered to each of %d triggers after restart", total, triggers)
	n, dups := delivered()
	t.Logf("crash test, %d trigger(s): %d accepted, %d delivered (fewest per trigger) before SIGKILL, %d after, %d duplicates", triggers, total, atKill, n, dups)
	require.LessOrEqual(t, dups, 4*triggers, "duplicates bounded by what was in flight at the kill")
	out, err := run(t, nil, "trigger", "stats", "crash-0", "-o", "json", "--server", b.GRPC)
	require.NoError(t, err)
	var st any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &st))
	b.stop(t)
}
