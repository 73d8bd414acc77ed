package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestAMQPSourceCrashLosesNothing runs an amqp source in `switchyard serve`,
// publishes 500 messages to its RabbitMQ queue while it ingests them,
// SIGKILLs the server mid-stream, restarts it and checks that every
// message's event reached the function (RabbitMQ requeues what the killed
// server had not acknowledged).
func TestAMQPSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	queue := "sytest-e2e-amqp-" + prefix

	conn, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	require.NoError(t, err, "RabbitMQ at 127.0.0.1:5672")
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		if c, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/"); err == nil {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(queue, false, false, false)
			}
			_ = c.Close()
		}
	})

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: orders
    kind: amqp
    fields:
      url: amqp://guest:guest@127.0.0.1:5672/
      queue: %s
      prefetch: 50
      type: crash.amqp
`, queue)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: amqp-crash
filter: {attributes: {type: crash.amqp}}
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
			// No message-id: the event id is the hash of the content.
			conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp091.Publishing{
				DeliveryMode: amqp091.Persistent, ContentType: "application/json", Body: fmt.Appendf(nil, `{"order":%d}`, i)})
			if err == nil {
				_, err = conf.WaitContext(ctx)
			}
			if err != nil {
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
	t.Logf("amqp crash test: %d published, %d delivered before SIGKILL, %d delivered in all (%s after the restart), %d duplicates",
		total, atKill, c.unique(), time.Since(restarted).Round(time.Millisecond), c.duplicates())
	b.stop(t)
}
