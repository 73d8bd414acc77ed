package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestDedupRepublishAfterCrash is a publisher that never learned its
// publish was accepted: the instance that wrote its events is SIGKILLed
// before the publisher could act on the answer, and the publisher sends
// every event again, through the restarted instance and through a second
// one. With the trigger's dedup window each event is delivered once
// (whether delivered before the kill or still queued), every copy is
// answered success and counted in trigger stats. On one Redis and on a
// Redis Cluster (the check runs in the trigger's hash slot).
func TestDedupRepublishAfterCrash(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		testenv.Real(t)
		dedupRepublish(t, testenv.RedisURL(), testenv.PrefixT(t))
	})
	t.Run("cluster", func(t *testing.T) {
		b := testenv.Cluster(t)
		dedupRepublish(t, b.URL, b.Prefix)
	})
}

func dedupRepublish(t *testing.T, redisURL, prefix string) {
	c := &counter{seen: map[string]int{}, delay: 5 * time.Millisecond}
	fnAddr := freeAddr(t)
	serveFunction(t, fnAddr, c.handle)
	args := []string{"--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: dedup
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 2, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms, dedup_window: 10m}
`, fnAddr))
	const total = 300
	for i := 0; i < total; i += 100 {
		postBatch(t, a.HTTP, i, 100) // one trigger: queued directly
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() >= 10 }, "first deliveries")
	a.Kill()
	atKill := c.unique()

	b := startServe(t, args...)
	other := startServe(t, args...)
	for i := 0; i < total; i += 100 {
		postBatch(t, b.HTTP, i, 100)     // the publisher's retry
		postBatch(t, other.HTTP, i, 100) // and one through another instance
	}
	testenv.Eventually(t, 60*time.Second, func() bool { return c.unique() == total }, "every event delivered")
	var st struct {
		Undelivered int64 `json:"undelivered"`
		Duplicates  int64 `json:"duplicates"`
		Enqueued    int64 `json:"enqueued"`
	}
	testenv.Eventually(t, 30*time.Second, func() bool {
		out, err := run(t, nil, "trigger", "stats", "dedup", "-o", "json", "--server", other.GRPC)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &st))
		return st.Undelivered == 0
	}, "the queue drained")
	t.Logf("republished after a crash: %d events, %d delivered before SIGKILL, %d duplicate deliveries (%d queued twice), %d copies caught",
		total, atKill, c.duplicates(), c.ingested(), st.Duplicates)
	require.Zero(t, c.ingested(), "no event queued twice")
	require.LessOrEqual(t, c.duplicates(), 2*2, "only attempts in flight at the kill run twice")
	require.EqualValues(t, 2*total, st.Duplicates, "every copy counted")
	require.EqualValues(t, total, st.Enqueued)
	b.stop(t)
	other.stop(t)
}
