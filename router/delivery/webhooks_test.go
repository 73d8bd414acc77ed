package delivery

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// A receiver built on the Standard Webhooks reference library (its Go
// port) verifies Switchyard's signed deliveries: the signature covers the
// id, the timestamp and the exact body; the id stays the same across
// attempts and differs per trigger and event; a tampered body or id fails.
func TestSignedDeliveriesVerifyWithStandardWebhooks(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	type got struct {
		header http.Header
		body   []byte
		err    error
	}
	var mu sync.Mutex
	var reqs []got
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := wh.Verify(body, r.Header)
		mu.Lock()
		reqs = append(reqs, got{r.Header.Clone(), body, err})
		mu.Unlock()
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer web.Close()

	mem := &memSecrets{m: map[string]string{"hooks": secret, "tok": "t0ken-value", "bad": "not-whsec"}}
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Secrets: mem}})
	defer tg.Close()
	ep := &Endpoint{SigningSecret: "hooks", BearerSecret: "tok"}
	for n := 1; n <= 2; n++ {
		a := httpAttempt(t, web.URL+"/hook", ep)
		a.Number = n
		r := tg.Invoke(context.Background(), a)
		require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
	}
	other := httpAttempt(t, web.URL+"/hook", ep)
	other.Trigger = "audit"
	require.Equal(t, Ack, tg.Invoke(context.Background(), other).Verdict)
	ev2, raw2, key2 := testEvent(t, "e-2")
	require.Equal(t, Ack, tg.Invoke(context.Background(), &Attempt{Trigger: "orders", URL: web.URL + "/hook", Event: ev2, Raw: raw2, Key: key2, Number: 1, Timeout: 5 * time.Second, Endpoint: ep}).Verdict)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reqs, 4)
	for _, g := range reqs {
		require.NoError(t, g.err)
		require.Equal(t, "Bearer t0ken-value", g.header.Get("Authorization"))
		ts, err := strconv.ParseInt(g.header.Get("webhook-timestamp"), 10, 64)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), time.Unix(ts, 0), time.Minute)
	}
	require.Equal(t, reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"), "retries keep the id")
	require.NotEqual(t, reqs[0].header.Get("webhook-id"), reqs[2].header.Get("webhook-id"), "another trigger, another id")
	require.NotEqual(t, reqs[0].header.Get("webhook-id"), reqs[3].header.Get("webhook-id"), "another event, another id")
	require.Equal(t, `{"total":12.5}`, string(reqs[0].body))

	// Tampering is caught by the library.
	tampered := reqs[0].header.Clone()
	require.Error(t, wh.Verify([]byte(`{"total":1250}`), tampered))
	tampered.Set("webhook-id", reqs[2].header.Get("webhook-id"))
	require.Error(t, wh.Verify(reqs[0].body, tampered))
	// A key that is not in the whsec_ format: retried until fixed, nothing sent.
	r := tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/hook", &Endpoint{SigningSecret: "bad"}))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "SECRET_UNAVAILABLE", r.Code)
	require.Contains(t, r.Message, "whsec_")
	require.Len(t, reqs, 4)
}
