package function

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// signed returns the headers the Standard Webhooks reference library (Go
// port) puts on body.
func signed(t testing.TB, secret, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestWebhookVerifier(t *testing.T) {
	v, err := NewWebhookVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"total":12.5}`)
	h := signed(t, testSecret, "msg_1", now, body)
	if err := v.Verify(h, body); err != nil {
		t.Fatalf("a reference signature: %v", err)
	}
	// Several signatures (rotation on the sender's side): one match is enough.
	multi := h.Clone()
	multi.Set("webhook-signature", "v1,AAAA v1a,xyz "+h.Get("webhook-signature"))
	if err := v.Verify(multi, body); err != nil {
		t.Fatal(err)
	}
	// Rotation on the receiver's side: both secrets verify.
	other := "whsec_" + strings.Repeat("QkJC", 8)
	both, err := NewWebhookVerifier(other, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := both.Verify(h, body); err != nil {
		t.Fatal(err)
	}
	if err := both.Verify(signed(t, other, "msg_2", now, body), body); err != nil {
		t.Fatal(err)
	}

	bad := map[string]func() (http.Header, []byte){
		"tampered body": func() (http.Header, []byte) { return h, []byte(`{"total":1250}`) },
		"other id": func() (http.Header, []byte) {
			c := h.Clone()
			c.Set("webhook-id", "msg_9")
			return c, body
		},
		"other timestamp": func() (http.Header, []byte) {
			c := h.Clone()
			c.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
			return c, body
		},
		"other secret": func() (http.Header, []byte) { return signed(t, other, "msg_1", now, body), body },
		"stale": func() (http.Header, []byte) {
			return signed(t, testSecret, "msg_1", now.Add(-6*time.Minute), body), body
		},
		"future": func() (http.Header, []byte) {
			return signed(t, testSecret, "msg_1", now.Add(6*time.Minute), body), body
		},
		"far past":      func() (http.Header, []byte) { return signed(t, testSecret, "msg_1", time.Unix(-1<<40, 0), body), body },
		"no signature":  func() (http.Header, []byte) { c := h.Clone(); c.Del("webhook-signature"); return c, body },
		"no id":         func() (http.Header, []byte) { c := h.Clone(); c.Del("webhook-id"); return c, body },
		"bad timestamp": func() (http.Header, []byte) { c := h.Clone(); c.Set("webhook-timestamp", "soon"); return c, body },
		"unknown scheme": func() (http.Header, []byte) {
			c := h.Clone()
			c.Set("webhook-signature", "v2,"+strings.TrimPrefix(h.Get("webhook-signature"), "v1,"))
			return c, body
		},
	}
	for name, mk := range bad {
		hh, b := mk()
		err := v.Verify(hh, b)
		if !errors.Is(err, ErrWebhookUnverified) {
			t.Fatalf("%s: want ErrWebhookUnverified, got %v", name, err)
		}
	}
	// The clock is the verifier's.
	v.Now = func() time.Time { return now.Add(-6 * time.Minute) }
	if err := v.Verify(h, body); !errors.Is(err, ErrWebhookUnverified) {
		t.Fatalf("a verifier whose clock is 6 minutes behind: %v", err)
	}
	v.Tolerance = 10 * time.Minute
	if err := v.Verify(h, body); err != nil {
		t.Fatal(err)
	}

	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_***"} {
		if _, err := NewWebhookVerifier(s); err == nil {
			t.Fatalf("secret %q accepted", s)
		}
	}
	if _, err := NewWebhookVerifier(); err == nil {
		t.Fatal("no secret accepted")
	}
}

func TestWebhookMiddleware(t *testing.T) {
	v, err := NewWebhookVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	v.MaxBody = 64
	var got []byte
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	post := func(h http.Header, body []byte) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range h {
			req.Header[k] = vs
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	body := []byte(`{"n":1}`)
	if code := post(signed(t, testSecret, "m", time.Now(), body), body); code != http.StatusNoContent || !bytes.Equal(got, body) {
		t.Fatalf("signed: %d, handler saw %q", code, got)
	}
	got = nil
	if code := post(signed(t, testSecret, "m", time.Now(), body), []byte(`{"n":2}`)); code != http.StatusUnauthorized || got != nil {
		t.Fatalf("tampered: %d, handler ran: %v", code, got != nil)
	}
	big := bytes.Repeat([]byte("x"), 65)
	if code := post(signed(t, testSecret, "m", time.Now(), big), big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d", code)
	}
}

// FuzzWebhookVerify: never panics, and accepts only a request that carries
// the signature the reference library computes for it.
func FuzzWebhookVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := wh.Sign("msg_1", now, []byte("{}"))
	f.Add("msg_1", strconv.FormatInt(now.Unix(), 10), good, []byte("{}"))
	f.Add("msg_1", "1800000000", "v1,"+strings.Repeat("A", 44), []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("id", "-9223372036854775808", "v1, v1,,", []byte("x"))
	f.Add("id", "99999999999999999999", "v1a,abc v1,###", []byte("x"))
	v, err := NewWebhookVerifier(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	v.Now = func() time.Time { return now }
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sigs)
		err := v.Verify(h, body)
		if err == nil {
			secs, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("accepted timestamp %q", ts)
			}
			want, _ := wh.Sign(h.Get("webhook-id"), time.Unix(secs, 0), body)
			if !strings.Contains(" "+h.Get("webhook-signature")+" ", " "+want+" ") && !containsField(h.Get("webhook-signature"), want) {
				t.Fatalf("accepted %q without the signature %q", sigs, want)
			}
		} else if !errors.Is(err, ErrWebhookUnverified) {
			t.Fatalf("error %v does not wrap ErrWebhookUnverified", err)
		}
	})
}

func containsField(list, want string) bool {
	for _, f := range strings.Fields(list) {
		if f == want {
			return true
		}
	}
	return false
}
