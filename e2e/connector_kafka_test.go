package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestKafkaSourceCrashLosesNothing runs a kafka source in `switchyard serve`
// against an in-process kfake cluster listening on loopback, produces 500
// records to a three-partition topic while it ingests them, SIGKILLs the
// server mid-stream, restarts it and checks that every record's event
// reached the function: the new group member starts at the committed
// offsets, which only ever cover records whose events were durable.
func TestKafkaSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	topic := "sytest-e2e-" + prefix

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(0))
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	_, err = kadm.NewClient(prod).CreateTopic(context.Background(), 3, 1, nil, topic)
	require.NoError(t, err)

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: orders
    kind: kafka
    fields:
      brokers: [%s]
      topics: [%s]
      session_timeout: 2s
      type: crash.kafka
`, strings.Join(cluster.ListenAddrs(), ", "), topic)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: kafka-crash
filter: {attributes: {type: crash.kafka}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	// Produce in the background, paced, so that the kill lands mid-stream.
	const total = 500
	produced := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range total {
			r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "customer-%d", i%17), Value: fmt.Appendf(nil, `{"order":%d}`, i)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				produced <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		produced <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	atKill := c.unique()
	require.NoError(t, <-produced)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	restarted := time.Now()
	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d records delivered after the restart (have %d)", total, c.unique())
	t.Logf("kafka crash test: %d produced, %d delivered before SIGKILL, %d delivered in all (%s after the restart), %d duplicates",
		total, atKill, c.unique(), time.Since(restarted).Round(time.Millisecond), c.duplicates())
	b.stop(t)
}
