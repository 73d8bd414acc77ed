package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// TestHTTPTargets delivers to HTTP targets as CloudEvents binary-mode POSTs:
// data byte-exact and attributes in ce- headers; 503 with Retry-After is
// retried after the delay asked; 400 dead-letters at once with the status.
func TestHTTPTargets(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		type hit struct {
			header http.Header
			body   []byte
			at     time.Time
		}
		var mu sync.Mutex
		hits := map[string][]hit{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			id := r.Header.Get("Ce-Id")
			mu.Lock()
			hits[id] = append(hits[id], hit{r.Header.Clone(), body, time.Now()})
			n := len(hits[id])
			mu.Unlock()
			switch {
			case r.URL.Path == "/bad":
				http.Error(w, "order total is negative", http.StatusBadRequest)
			case n == 1:
				w.Header().Set("Retry-After", "1")
				http.Error(w, "warming up", http.StatusServiceUnavailable)
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		}))
		t.Cleanup(srv.Close)
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: web
filter: {attributes: {type: web}}
target: {url: "%s/ok"}
delivery: {initial_backoff: 10ms, max_backoff: 5s}
---
name: web-bad
filter: {attributes: {type: web-bad}}
target: {url: "%s/bad"}
`, srv.URL, srv.URL))
		data := []byte("{ \"total\":  12.50 }")
		ev := event.New()
		ev.SetID("w1")
		ev.SetSource("/shop")
		ev.SetType("web")
		ev.SetSubject("eu-1")
		ev.SetExtension("tenant", "acme")
		require.NoError(t, ev.SetData("application/json", data))
		require.NoError(t, e.client.Publish(context.Background(), ev))
		require.NoError(t, e.client.Publish(context.Background(), newEvent("w2", "web-bad")))

		testenv.Eventually(t, 15*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(hits["w1"]) == 2 }, "retried after 503")
		mu.Lock()
		first, second := hits["w1"][0], hits["w1"][1]
		mu.Unlock()
		require.Equal(t, data, second.body, "data byte-exact")
		require.Equal(t, "application/json", second.header.Get("Content-Type"))
		require.Equal(t, "/shop", second.header.Get("Ce-Source"))
		require.Equal(t, "eu-1", second.header.Get("Ce-Subject"))
		require.Equal(t, "acme", second.header.Get("Ce-Tenant"))
		require.Equal(t, "2", second.header.Get("Switchyard-Attempt"))
		require.Equal(t, "/shop w1", second.header.Get("Idempotency-Key"))
		require.GreaterOrEqual(t, second.at.Sub(first.at), 900*time.Millisecond, "Retry-After honoured")

		testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "web-bad")) == 1 }, "400 dead-letters")
		dl := deadLetters(t, e.client, "web-bad")[0]
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, dl.GetReason())
		require.EqualValues(t, 400, dl.GetAttempts()[0].GetHttpStatus())
		require.Contains(t, dl.GetAttempts()[0].GetMessage(), "order total is negative")
	})
}
