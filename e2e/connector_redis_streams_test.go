package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestRedisStreamsSourceCrashLosesNothing runs a redis_streams source in
// `switchyard serve`, adds 500 entries to its stream while it ingests them,
// SIGKILLs the server mid-stream, restarts it and checks that every entry's
// event reached the function: the restarted consumer (same name) re-reads
// the entries it had read but not acknowledged.
func TestRedisStreamsSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	stream := "sytest-e2e-rs-" + prefix

	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rc := redis.NewClient(opt)
	t.Cleanup(func() { rc.Del(context.Background(), stream); _ = rc.Close() })

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: orders
    kind: redis_streams
    fields:
      url: %s
      stream: %s
      count: 50
      block: 200ms
      type: crash.redis_streams
`, redisURL, stream)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: rs-crash
filter: {attributes: {type: crash.redis_streams}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	// Add entries in the background, paced, so that the kill lands mid-stream.
	const total = 500
	added := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := range total {
			if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"order": i}}).Err(); err != nil {
				added <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		added <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	atKill := c.unique()
	require.NoError(t, <-added)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	restarted := time.Now()
	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d entries delivered after the restart (have %d)", total, c.unique())
	t.Logf("redis_streams crash test: %d added, %d delivered before SIGKILL, %d delivered in all (%s after the restart), %d duplicates",
		total, atKill, c.unique(), time.Since(restarted).Round(time.Millisecond), c.duplicates())
	b.stop(t)
	pending, err := rc.XPending(context.Background(), stream, "switchyard-orders").Result()
	require.NoError(t, err)
	require.Zero(t, pending.Count, "every entry acknowledged after a clean stop")
}
