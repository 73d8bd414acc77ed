package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestS3NotificationsSourceCrashLosesNothing runs an s3_notifications source
// in `switchyard serve` and has eight senders POST MinIO-style bucket
// notifications (five records each, 500 records in all) to it, retrying
// each until answered 200 as MinIO does; it SIGKILLs the server mid-stream,
// restarts it on the same address and checks that every record's event
// reached the function: a notification is answered only once all its
// records are durable.
func TestS3NotificationsSourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
sources:
  - name: bucket-events
    kind: s3_notifications
    fields:
      token: s3cr3t
`), 0o600))
	httpAddr := freeAddr(t)
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms", "--http-addr", httpAddr}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: s3-notifications-crash
filter: {attributes: {type: "com.amazonaws.s3.ObjectCreated:Put"}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	const total, perNotification, senders = 500, 5, 8
	record := func(i int) string {
		return fmt.Sprintf(`{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2025-03-04T05:06:07.5Z",`+
			`"eventName":"s3:ObjectCreated:Put","responseElements":{"x-amz-request-id":"REQ%05d","x-amz-id-2":"node-1"},`+
			`"s3":{"bucket":{"name":"photos"},"object":{"key":"img/%05d.jpg","size":10,"eTag":"e%d","sequencer":"%X"}}}`, i, i, i, i)
	}
	url := "http://" + httpAddr + "/s3/bucket-events"
	send := func(body []byte) error {
		for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer s3cr3t")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // down: retry, as MinIO does
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusNotFound {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		return fmt.Errorf("never accepted")
	}
	bodies := make(chan []byte)
	go func() {
		defer close(bodies)
		for i := 0; i < total; i += perNotification {
			recs := make([]string, 0, perNotification)
			for j := i; j < i+perNotification; j++ {
				recs = append(recs, record(j))
			}
			bodies <- []byte(`{"EventName":"s3:ObjectCreated:Put","Key":"photos/img","Records":[` + strings.Join(recs, ",") + `]}`)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				if err := send(body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	atKill := c.unique()
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	b := startServe(t, args...)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d records delivered after the restart (have %d)", total, c.unique())
	t.Logf("s3_notifications crash test: %d records, %d delivered before SIGKILL, %d delivered in all, %d duplicates",
		total, atKill, c.unique(), c.duplicates())
	b.stop(t)
}
