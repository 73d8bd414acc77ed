package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// webhookCrash is the webhook source's crash test (see
// TestConnectorCrashLosesNothing): eight senders POST 500 signed webhooks
// (the default hmac scheme), each retried until answered 2xx as webhook
// senders do, to a server restarted on the same address; a request is
// answered only once its event is durable. A request in flight at the kill
// holds its mark for twice the source's timeout, during which its retries
// get 503.
func webhookCrash(t *testing.T) crashCase {
	testenv.Real(t)
	t.Setenv("E2E_HOOK_SECRET", "hunter2")
	httpAddr := freeAddr(t)
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
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // server down: retry
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusAccepted, http.StatusOK: // stored now, or by an attempt whose answer was lost
				return nil
			case http.StatusServiceUnavailable, http.StatusNotFound:
			default:
				return fmt.Errorf("webhook %d: status %d", i, resp.StatusCode)
			}
		}
		return fmt.Errorf("webhook %d never accepted", i)
	}
	return crashCase{
		prefix: testenv.PrefixT(t),
		sources: `
  - name: shop-hooks
    kind: webhook
    fields:
      type: com.example.hook
      secret: ${E2E_HOOK_SECRET}
      id_header: X-Delivery
      timeout: 3s
`,
		filter:          "{attributes: {type: com.example.hook}}",
		args:            []string{"--http-addr", httpAddr},
		total:           total,
		feedNeedsServer: true,
		feed: func() <-chan error {
			next := make(chan int)
			go func() {
				defer close(next)
				for i := range total {
					next <- i
				}
			}()
			done := make(chan error, 1)
			go func() {
				var wg sync.WaitGroup
				errs := make(chan error, senders)
				for range senders {
					wg.Go(func() {
						for i := range next {
							if err := send(i); err != nil {
								select { // the first is enough; keep draining next
								case errs <- err:
								default:
								}
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				done <- <-errs // nil when none failed
			}()
			return done
		},
	}
}

// TestWebhookReplayAcrossInstances runs two `switchyard serve` sharing one
// Redis, each with the same Standard Webhooks source, and signs requests with
// the Standard Webhooks project's Go library: a request stored through one
// instance and replayed to the other is acknowledged (200) and stored once;
// a tampered body, a changed id and a stale timestamp are refused (401)
// without storing anything; a body posted as a form is refused (415).
func TestWebhookReplayAcrossInstances(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	key := []byte("e2e standard webhooks key")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
sources:
  - name: billing
    kind: webhook
    fields:
      type: com.example.billing
      scheme: standard
      secret: ${E2E_STD_SECRET}
`), 0o600))
	t.Setenv("E2E_STD_SECRET", secret)
	args := []string{"--config", cfg, "--redis-url", testenv.RedisURL(), "--key-prefix", prefix}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: billing
filter: {attributes: {type: com.example.billing}}
target: {grpc: "%s"}
`, fnAddr))
	b := startServe(t, args...) // reads the trigger as it starts
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	signed := func(id string, ts time.Time, body string) http.Header {
		sig, err := wh.Sign(id, ts, []byte(body))
		require.NoError(t, err)
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set(standardwebhooks.HeaderWebhookID, id)
		h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(standardwebhooks.HeaderWebhookSignature, sig)
		return h
	}
	// post sends once; 503 (the source not running yet) is retried.
	post := func(p *proc, body string, h http.Header) (int, string) {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.HTTP+"/webhooks/billing", strings.NewReader(body))
			req.Header = h.Clone()
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				return resp.StatusCode, string(answer)
			}
		}
	}

	body := `{"invoice": "in_1", "paid": true}`
	h := signed("msg_1", time.Now(), body)
	status, answer := post(a, body, h)
	require.Equal(t, http.StatusAccepted, status, answer)
	for _, p := range []*proc{b, a, b} {
		status, answer = post(p, body, h)
		require.Equal(t, http.StatusOK, status, answer)
		require.Contains(t, answer, `"duplicate":true`)
	}
	status, answer = post(b, `{"invoice": "in_1", "paid": false}`, h)
	require.Equal(t, http.StatusUnauthorized, status, "tampered body: %s", answer)
	changed := h.Clone()
	changed.Set(standardwebhooks.HeaderWebhookID, "msg_9")
	status, answer = post(b, body, changed)
	require.Equal(t, http.StatusUnauthorized, status, "changed id: %s", answer)
	stale := `{"invoice": "in_0"}`
	status, answer = post(b, stale, signed("msg_0", time.Now().Add(-10*time.Minute), stale))
	require.Equal(t, http.StatusUnauthorized, status, "stale: %s", answer)
	form := signed("msg_form", time.Now(), "a=1")
	form.Set("Content-Type", "application/x-www-form-urlencoded")
	status, answer = post(a, "a=1", form)
	require.Equal(t, http.StatusUnsupportedMediaType, status, "form: %s", answer)
	body2 := `{"invoice": "in_2"}`
	status, answer = post(b, body2, signed("msg_2", time.Now(), body2))
	require.Equal(t, http.StatusAccepted, status, answer)

	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() == 2 }, "both invoices delivered (have %d)", c.unique())
	opt, err := redis.ParseURL(testenv.RedisURL())
	require.NoError(t, err)
	rc := redis.NewClient(opt)
	defer rc.Close()
	enqueued, err := rc.HGet(context.Background(), store.NewKeys(prefix).Queue("billing").Stats, "enqueued").Int()
	require.NoError(t, err)
	require.Equal(t, 2, enqueued, "events queued for the trigger")
	require.Zero(t, c.duplicates())
	a.stop(t)
	b.stop(t)
}
