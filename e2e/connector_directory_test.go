package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestDirectorySourceCrashLosesNothing runs a directory source in
// `switchyard serve`, writes 500 files into the watched directory while it
// ingests them, SIGKILLs the server mid-stream (files keep coming while it
// is down), restarts it and checks that every file's created event reached
// the function: the restarted source rescans and compares with its
// checkpoint.
func TestDirectorySourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	dir := t.TempDir()

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: inbox
    kind: directory
    fields:
      path: %q
      recursive: true
      include: ["*.json"]
      debounce: 50ms
`, dir)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: directory-crash
filter: {attributes: {type: com.switchyard.file.created}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	// Write in the background, paced, so that the kill lands mid-stream.
	const total = 500
	written := make(chan error, 1)
	go func() {
		for i := range total {
			p := filepath.Join(dir, fmt.Sprintf("batch-%d", i/100), fmt.Sprintf("file-%03d.json", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				written <- err
				return
			}
			if err := os.WriteFile(p, fmt.Appendf(nil, `{"n":%d}`, i), 0o644); err != nil {
				written <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		written <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.kill()
	atKill := c.unique()
	require.NoError(t, <-written)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d files delivered after the restart (have %d)", total, c.unique())
	// Nothing more comes: the restarted source reported each file once.
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, total, c.unique())
	t.Logf("directory crash test: %d files, %d delivered before SIGKILL, %d delivered in all, %d duplicates",
		total, atKill, c.unique(), c.duplicates())
	b.stop(t)
}
