package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestWebhookSourceCrashLosesNothing has eight senders POST 500 signed
// webhooks to a webhook source in `switchyard serve`, each retried until
// answered 202 as webhook senders do; it SIGKILLs the server mid-stream,
// restarts it on the same address and checks that every webhook reached the
// function: a request is answered only once its event is durable.
func TestWebhookSourceCrashLosesNothing(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
sources:
  - name: shop-hooks
    kind: webhook
    fields:
      type: com.example.hook
      secret: ${E2E_HOOK_SECRET}
      id_header: X-Delivery
`), 0o600))
	t.Setenv("E2E_HOOK_SECRET", "hunter2")
	httpAddr := freeAddr(t)
	args := []string{"--config", cfg, "--redis-url", testenv.RedisURL(), "--key-prefix", prefix, "--lease-grace", "500ms", "--http-addr", httpAddr}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: hooks
filter: {attributes: {type: com.example.hook}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))
	const total, senders = 500, 8
	url := "http://" + httpAddr + "/webhooks/shop-hooks"
	send := func(i int) error {
		body := []byte(fmt.Sprintf(`{"order": %d}`, i))
		mac := hmac.New(sha256.New, []byte("hunter2"))
		mac.Write(body)
		for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			req.Header.Set("X-Delivery", fmt.Sprintf("ev-%d", i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // server down: retry
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusAccepted:
				return nil
			case http.StatusServiceUnavailable, http.StatusNotFound:
			default:
				return fmt.Errorf("webhook %d: status %d", i, resp.StatusCode)
			}
		}
		return fmt.Errorf("webhook %d never accepted", i)
	}
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range total {
			next <- i
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := send(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.kill()
	atKill := c.unique()
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")
	b := startServe(t, args...)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d webhooks delivered after the restart (have %d)", total, c.unique())
	t.Logf("webhook crash test: %d webhooks, %d delivered before SIGKILL, %d delivered in all, %d duplicates",
		total, atKill, c.unique(), c.duplicates())
	b.stop(t)
}
