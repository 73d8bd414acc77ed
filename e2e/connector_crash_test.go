package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// crashCase is one connector's crash test: a source in `switchyard serve`
// is fed events while the server is SIGKILLed mid-stream and restarted on
// the same Redis; every event must reach the function. Each connector's
// setup (its system, its persistent session, what it starts from) builds
// one; runCrash does the rest.
type crashCase struct {
	// prefix is the test's Redis key prefix (a setup may name things after it).
	prefix string
	// sources is the server config file's sources list (YAML).
	sources string
	// filter is the trigger's filter (YAML flow), matching the source's events.
	filter string
	// args are more `serve` flags (both runs).
	args []string
	// total is how many events feed makes the source read.
	total int
	// feed starts feeding the source in the background, paced so that the
	// kill lands mid-stream; the channel gets its outcome.
	feed func() <-chan error
	// feedNeedsServer: the feeder waits for the server's answers (webhook
	// senders retry until answered), so it ends only after the restart.
	feedNeedsServer bool
}

// crashOutcome is what runCrash counted.
type crashOutcome struct {
	atKill, delivered int
	// duplicates counts deliveries beyond the first of an event id;
	// ingested those that were a first attempt again: the event was queued
	// twice (the source read it again after the crash and nothing caught
	// the copy), where a redelivery of one queued event is attempt 2 or
	// more (its lease expired with the killed instance).
	duplicates, ingested int
	// caught counts the copies the dedup window kept out (trigger stats).
	caught int64
}

// TestConnectorCrashLosesNothing runs every connector's crash test twice:
// without deduplication, as a baseline that reports the duplicates a
// crash causes (events the source reads again and queues twice, attempts
// in flight at the kill delivered again), and with a dedup window (serve
// --dedup-window), where no event is queued twice: the only duplicates
// left are the attempts in flight at the kill.
func TestConnectorCrashLosesNothing(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) crashCase
	}{
		{"directory", directoryCrash},
		{"mysql", mysqlCrash},
		{"mqtt v3.1.1", func(t *testing.T) crashCase { return mqttCrash(t, 4) }},
		{"mqtt v5", func(t *testing.T) crashCase { return mqttCrash(t, 5) }},
		{"webhook", webhookCrash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, window := range []time.Duration{0, 10 * time.Minute} {
				name := "no dedup"
				if window > 0 {
					name = "dedup window"
				}
				t.Run(name, func(t *testing.T) {
					o := runCrash(t, tc.setup(t), window)
					t.Logf("%s crash test, dedup window %s: %d delivered before SIGKILL, %d in all, %d duplicate deliveries "+
						"(%d queued twice at ingest, %d redelivered after the kill), %d copies caught by the window",
						tc.name, window, o.atKill, o.delivered, o.duplicates, o.ingested, o.duplicates-o.ingested, o.caught)
					if window > 0 {
						require.Zero(t, o.ingested, "with a dedup window no event is queued twice")
						require.LessOrEqual(t, o.duplicates, 2*crashConcurrency, "the duplicates left are attempts in flight at the kill")
					}
				})
			}
		})
	}
}

// crashConcurrency is the crash tests' trigger's max_concurrency.
const crashConcurrency = 8

func runCrash(t *testing.T, cc crashCase, window time.Duration) crashOutcome {
	t.Helper()
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}, firsts: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("sources:\n"+cc.sources), 0o600))
	args := append([]string{"--config", cfg, "--redis-url", testenv.RedisURL(), "--key-prefix", cc.prefix, "--lease-grace", "500ms"}, cc.args...)
	if window > 0 {
		args = append(args, "--dedup-window", window.String())
	}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: crash
filter: %s
target: {grpc: "%s"}
delivery: {max_concurrency: %d, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, cc.filter, fnAddr, crashConcurrency))

	fed := cc.feed()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	o := crashOutcome{atKill: c.unique()}
	if !cc.feedNeedsServer {
		require.NoError(t, <-fed)
	}
	require.Less(t, o.atKill, cc.total, "the crash must happen before ingestion completes")

	b := startServe(t, args...)
	if cc.feedNeedsServer {
		require.NoError(t, <-fed)
	}
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == cc.total },
		"all %d events delivered after the restart (have %d)", cc.total, c.unique())
	// The queue drains: every copy queued was delivered and acknowledged.
	var st struct {
		Undelivered int64 `json:"undelivered"`
		Duplicates  int64 `json:"duplicates"`
	}
	testenv.Eventually(t, 30*time.Second, func() bool {
		out, err := run(t, nil, "trigger", "stats", "crash", "-o", "json", "--server", b.GRPC)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &st))
		return st.Undelivered == 0
	}, "the trigger's queue drained")
	o.delivered, o.duplicates, o.ingested, o.caught = c.unique(), c.duplicates(), c.ingested(), st.Duplicates
	b.stop(t)
	return o
}
