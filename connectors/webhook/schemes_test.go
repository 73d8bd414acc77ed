package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchyard-io/switchyard/connectors/connectortest"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// The key of the Standard Webhooks tests, and its secret as senders show it.
var (
	standardKey    = []byte("a 24-byte symmetric key!")
	standardSecret = "whsec_" + base64.StdEncoding.EncodeToString(standardKey)
)

// signStandard signs with the Standard Webhooks project's own Go library,
// so the tests prove that what it sends is what the source accepts.
func signStandard(t *testing.T, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(standardSecret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	// Several signatures, as during a key rotation: only the last matches.
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" v1a,c2lnbmVk "+sig)
	return h
}

func hmacHex(newHash func() hash.Hash, key string, parts ...[]byte) string {
	mac := hmac.New(newHash, []byte(key))
	for _, p := range parts {
		mac.Write(p)
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// signGitHub signs as GitHub does (docs.github.com, "Validating webhook
// deliveries"): HMAC-SHA256 of the body, hex, after "sha256=".
func signGitHub(_ *testing.T, id string, _ time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Delivery", id)
	h.Set("X-Hub-Signature-256", "sha256="+hmacHex(sha256.New, "gh-secret", body))
	return h
}

// signStripe signs as Stripe documents it (docs.stripe.com, "Verify
// signatures manually"): HMAC-SHA256 of "t.body" keyed by the whole whsec_
// secret, hex, in t=…,v1=…; a v0 entry is there to be skipped.
func signStripe(_ *testing.T, _ string, ts time.Time, body []byte) http.Header {
	t := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Stripe-Signature", "t="+t+",v1="+hmacHex(sha256.New, "whsec_stripe", []byte(t+"."), body)+",v0=6ffbb59b")
	return h
}

// signHMAC signs for the hmac scheme as configured in schemes below.
func signHMAC(_ *testing.T, id string, _ time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Delivery", id)
	h.Set("X-Signature", hmacHex(sha512.New, "plain", body))
	return h
}

type scheme struct {
	fields map[string]any
	sign   func(t *testing.T, id string, ts time.Time, body []byte) http.Header
	// sigHeader holds the signature; timestamped schemes refuse stale requests.
	sigHeader   string
	timestamped bool
	// idOf is the event id of a request with delivery id and body.
	idOf func(id string, body []byte) string
}

func bodyID(_ string, body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func deliveryID(id string, _ []byte) string { return id }

var schemes = map[string]scheme{
	"standard": {fields: map[string]any{"scheme": "standard", "secret": standardSecret}, sign: signStandard, sigHeader: "webhook-signature", timestamped: true, idOf: deliveryID},
	"github":   {fields: map[string]any{"scheme": "github", "secret": "gh-secret"}, sign: signGitHub, sigHeader: "X-Hub-Signature-256", idOf: deliveryID},
	"stripe":   {fields: map[string]any{"scheme": "stripe", "secret": "whsec_stripe"}, sign: signStripe, sigHeader: "Stripe-Signature", timestamped: true, idOf: bodyID},
	"hmac": {fields: map[string]any{"secret": "plain", "signature_header": "X-Signature", "signature_prefix": "", "algorithm": "sha512", "id_header": "X-Delivery"},
		sign: signHMAC, sigHeader: "X-Signature", idOf: deliveryID},
}

// TestSchemes sends real requests on loopback, signed as each sender signs
// them, to a source running under a Runner, and counts what reaches the sink.
func TestSchemes(t *testing.T) {
	for name, sc := range schemes {
		t.Run(name, func(t *testing.T) {
			mux := connectortest.NewMux(t)
			src := build(t, connectortest.Env("hooks", &connectortest.MemCheckpoints{}, mux), sc.fields)
			sink := &connectortest.Sink{}
			runSource(t, src, sink)
			url := mux.URL + "/webhooks/hooks"
			stored := func() int { return len(sink.Events()) }

			body := []byte(`{"order": 1}`)
			hdr := sc.sign(t, "msg_1", time.Now(), body)
			status, ans := send(t, url, body, hdr)
			if status != http.StatusAccepted || ans["id"] != sc.idOf("msg_1", body) {
				t.Fatalf("valid request: status %d, answer %v", status, ans)
			}
			if n := stored(); n != 1 {
				t.Fatalf("valid request: %d events stored, want 1", n)
			}
			if got := sink.Events()[0]; got.GetId() != sc.idOf("msg_1", body) || got.GetTextData() != string(body) {
				t.Fatalf("stored %v", got)
			}

			// The same request again (a retry after a lost answer, or a
			// replay) is acknowledged and not stored again.
			for range 3 {
				status, ans = send(t, url, body, hdr)
				if status != http.StatusOK || ans["duplicate"] != true || ans["id"] != sc.idOf("msg_1", body) {
					t.Fatalf("replay: status %d, answer %v", status, ans)
				}
			}
			if n := stored(); n != 1 {
				t.Fatalf("after replays: %d events stored, want 1", n)
			}

			// A tampered body is refused, and the answer does not say
			// what signature would have matched.
			tampered := []byte(`{"order": 2}`)
			status, ans = send(t, url, tampered, hdr)
			if status != http.StatusUnauthorized {
				t.Fatalf("tampered body: status %d, answer %v", status, ans)
			}
			right := sc.sign(t, "msg_1", time.Now(), tampered).Get(sc.sigHeader)
			for _, part := range strings.FieldsFunc(right, func(r rune) bool { return r == ' ' || r == ',' || r == '=' }) {
				if len(part) >= 40 && strings.Contains(ans["_raw"].(string), part) {
					t.Fatalf("the refusal leaks a signature: %s", ans["_raw"])
				}
			}

			if sc.timestamped {
				for what, at := range map[string]time.Time{"stale": time.Now().Add(-6 * time.Minute), "future": time.Now().Add(6 * time.Minute)} {
					b := []byte(fmt.Sprintf(`{"order": %q}`, what))
					status, ans = send(t, url, b, sc.sign(t, "msg_"+what, at, b))
					if status != http.StatusUnauthorized || !strings.Contains(ans["title"].(string), "imestamp") {
						t.Fatalf("%s timestamp: status %d, answer %v", what, status, ans)
					}
				}
				// Within the tolerance, either way, is accepted.
				b := []byte(`{"order": "skewed"}`)
				if status, ans = send(t, url, b, sc.sign(t, "msg_skewed", time.Now().Add(-4*time.Minute), b)); status != http.StatusAccepted {
					t.Fatalf("4 min old: status %d, answer %v", status, ans)
				}
			}

			// Missing signature.
			bare := hdr.Clone()
			bare.Del(sc.sigHeader)
			if status, ans = send(t, url, []byte(`{"order": 3}`), bare); status != http.StatusUnauthorized {
				t.Fatalf("unsigned: status %d, answer %v", status, ans)
			}

			// A new delivery is stored.
			body2 := []byte(`{"order": 4}`)
			if status, ans = send(t, url, body2, sc.sign(t, "msg_2", time.Now(), body2)); status != http.StatusAccepted || ans["id"] != sc.idOf("msg_2", body2) {
				t.Fatalf("second delivery: status %d, answer %v", status, ans)
			}
			want := 2
			if sc.timestamped {
				want = 3 // and the skewed one
			}
			if ids, dups := sink.IDs(); len(ids) != want || dups != 0 {
				t.Fatalf("stored %d distinct events with %d duplicates, want %d and 0", len(ids), dups, want)
			}
		})
	}
}

// TestStandardWebhooksIDIsSigned: the Standard Webhooks id is part of the
// signed content, so a request whose webhook-id was changed is refused.
func TestStandardWebhooksIDIsSigned(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("hooks", &connectortest.MemCheckpoints{}, mux), schemes["standard"].fields)
	runSource(t, src, &connectortest.Sink{})
	body := []byte(`{"a":1}`)
	hdr := signStandard(t, "msg_1", time.Now(), body)
	hdr.Set("webhook-id", "msg_other")
	if status, ans := send(t, mux.URL+"/webhooks/hooks", body, hdr); status != http.StatusUnauthorized {
		t.Fatalf("changed id: status %d, answer %v", status, ans)
	}
	// A raw secret (no whsec_ prefix) is the key itself.
	mux2 := connectortest.NewMux(t)
	src2 := build(t, connectortest.Env("raw", &connectortest.MemCheckpoints{}, mux2), map[string]any{"scheme": "standard", "secret": string(standardKey)})
	runSource(t, src2, &connectortest.Sink{})
	if status, ans := send(t, mux2.URL+"/webhooks/raw", body, signStandard(t, "msg_1", time.Now(), body)); status != http.StatusAccepted {
		t.Fatalf("raw secret: status %d, answer %v", status, ans)
	}
}

// TestReplayAcrossInstances runs two instances of one source sharing their
// marks in the real Redis, as two servers do: a request stored through one
// is acknowledged and not stored again through the other, and concurrent
// copies sent to both are stored once.
func TestReplayAcrossInstances(t *testing.T) {
	b := testenv.Real(t)
	st := store.New(b.Client, b.Prefix)
	sink := &connectortest.Sink{}
	var urls []string
	for range 2 {
		mux := connectortest.NewMux(t)
		env := connectortest.Env("hooks", &connectortest.MemCheckpoints{}, mux)
		env.Marks = st.Marks("hooks")
		runSource(t, build(t, env, schemes["standard"].fields), sink)
		urls = append(urls, mux.URL+"/webhooks/hooks")
	}
	body := []byte(`{"n": 1}`)
	hdr := signStandard(t, "msg_1", time.Now(), body)
	if status, ans := send(t, urls[0], body, hdr); status != http.StatusAccepted {
		t.Fatalf("first: status %d, answer %v", status, ans)
	}
	if status, ans := send(t, urls[1], body, hdr); status != http.StatusOK || ans["duplicate"] != true {
		t.Fatalf("replay to the other instance: status %d, answer %v", status, ans)
	}

	// 16 copies of one new request at once, half to each instance, each
	// retried while answered 503 (a copy being stored): all end 2xx, one
	// of them 202, and the event is stored once.
	body2 := []byte(`{"n": 2}`)
	hdr2 := signStandard(t, "msg_2", time.Now(), body2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := send(t, urls[i%2], body2, hdr2)
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusAccepted] != 1 || statuses[http.StatusOK] != 15 {
		t.Fatalf("answers to 16 concurrent copies: %v, want one 202 and fifteen 200", statuses)
	}
	ids, dups := sink.IDs()
	if len(ids) != 2 || dups != 0 || !ids["msg_1"] || !ids["msg_2"] {
		t.Fatalf("stored %v with %d duplicates, want msg_1 and msg_2 once each", ids, dups)
	}
	// The marks are under the source's key prefix, with an expiry.
	keys, err := b.Client.Keys(context.Background(), b.Prefix+":{src:hooks}:m:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("marks %v (%v), want 2", keys, err)
	}
	if ttl := b.Client.PTTL(context.Background(), keys[0]).Val(); ttl <= 0 || ttl > 10*time.Minute+2*time.Second {
		t.Fatalf("mark expires in %s, want within the 10 min dedup window", ttl)
	}
}

// rawPost sends once, without retrying.
func rawPost(t *testing.T, url string, body []byte, hdr http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header = hdr.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestCopiesWhileStoringAndAfterAFailure drives the source by hand: a copy
// arriving while the first is being stored gets 503; a request whose store
// failed is taken again when retried (its mark was released); once stored,
// copies get 200.
func TestCopiesWhileStoringAndAfterAFailure(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("hooks", &connectortest.MemCheckpoints{}, mux), schemes["github"].fields)
	ctx := context.Background()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	url := mux.URL + "/webhooks/hooks"
	body := []byte(`{"a":1}`)
	hdr := signGitHub(t, "d-1", time.Now(), body)

	type result struct {
		status int
		body   string
	}
	first := make(chan result, 1)
	go func() { s, b := rawPost(t, url, body, hdr); first <- result{s, b} }()
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status, ans := rawPost(t, url, body, hdr); status != http.StatusServiceUnavailable || !strings.Contains(ans, "being stored") {
		t.Fatalf("copy while storing: status %d, answer %s", status, ans)
	}
	if err := m.Ack(ctx, errors.New("store unavailable")); err != nil {
		t.Fatal(err)
	}
	if r := <-first; r.status != http.StatusServiceUnavailable {
		t.Fatalf("failed store: status %d, answer %s", r.status, r.body)
	}

	go func() { s, b := rawPost(t, url, body, hdr); first <- result{s, b} }()
	m, err = src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Event.GetId() != "d-1" {
		t.Fatalf("retry after a failure: event %v", m.Event)
	}
	if err := m.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-first; r.status != http.StatusAccepted {
		t.Fatalf("stored: status %d, answer %s", r.status, r.body)
	}
	if status, ans := rawPost(t, url, body, hdr); status != http.StatusOK || !strings.Contains(ans, `"duplicate":true`) {
		t.Fatalf("copy after storing: status %d, answer %s", status, ans)
	}
	// Nothing else was handed over.
	rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if m, err := src.Read(rctx); err == nil {
		t.Fatalf("a copy was handed over: %v", m.Event)
	}
}

// TestHeaderBounds: oversized signature, id and subject headers get 431.
func TestHeaderBounds(t *testing.T) {
	mux := connectortest.NewMux(t)
	fields := map[string]any{"scheme": "github", "secret": "gh-secret", "subject_header": "X-GitHub-Event"}
	runSource(t, build(t, connectortest.Env("hooks", &connectortest.MemCheckpoints{}, mux), fields), &connectortest.Sink{})
	url := mux.URL + "/webhooks/hooks"
	body := []byte(`{"a":1}`)
	for name, mutate := range map[string]func(http.Header){
		"id":      func(h http.Header) { h.Set("X-GitHub-Delivery", strings.Repeat("x", 2000)) },
		"subject": func(h http.Header) { h.Set("X-GitHub-Event", strings.Repeat("x", 2000)) },
		"signature": func(h http.Header) {
			h.Set("X-Hub-Signature-256", h.Get("X-Hub-Signature-256")+strings.Repeat("0", 5000))
		},
	} {
		hdr := signGitHub(t, "d-1", time.Now(), body)
		mutate(hdr)
		if status, ans := send(t, url, body, hdr); status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: status %d, answer %v", name, status, ans)
		}
	}
	// Standard Webhooks: an oversized signature list.
	mux2 := connectortest.NewMux(t)
	runSource(t, build(t, connectortest.Env("std", &connectortest.MemCheckpoints{}, mux2), schemes["standard"].fields), &connectortest.Sink{})
	hdr := signStandard(t, "msg_1", time.Now(), body)
	hdr.Set("webhook-signature", strings.Repeat("v1,AAAA ", 600)+hdr.Get("webhook-signature"))
	if status, ans := send(t, mux2.URL+"/webhooks/std", body, hdr); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("standard signature list: status %d, answer %v", status, ans)
	}
}
