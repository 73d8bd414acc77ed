package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestNATSJetStreamSourceCrashLosesNothing runs a nats_jetstream source in
// `switchyard serve`, publishes 500 messages to its stream while it ingests
// them, SIGKILLs the server mid-stream, restarts it and checks that every
// message's event reached the function: JetStream redelivers what the
// killed server had not acked once ack_wait passes.
func TestNATSJetStreamSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	stream := "SYTEST_E2E_" + strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	subject := "sytest.e2e." + prefix

	nc, err := nats.Connect("nats://127.0.0.1:4222")
	require.NoError(t, err, "NATS at 127.0.0.1:4222")
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: stream, Subjects: []string{subject + ".>"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: orders
    kind: nats_jetstream
    fields:
      url: nats://127.0.0.1:4222
      stream: %s
      ack_wait: 2s
      type: crash.nats
`, stream)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: nats-crash
filter: {attributes: {type: crash.nats}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	// Publish in the background, paced, so that the kill lands mid-stream.
	const total = 500
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range total {
			if _, err := js.Publish(ctx, subject+".created", fmt.Appendf(nil, `{"order":%d}`, i)); err != nil {
				published <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		published <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	atKill := c.unique()
	require.NoError(t, <-published)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	restarted := time.Now()
	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d messages delivered after the restart (have %d)", total, c.unique())
	t.Logf("nats_jetstream crash test: %d published, %d delivered before SIGKILL, %d delivered in all (%s after the restart), %d duplicates",
		total, atKill, c.unique(), time.Since(restarted).Round(time.Millisecond), c.duplicates())
	b.stop(t)
}
