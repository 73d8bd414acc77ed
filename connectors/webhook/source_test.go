package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/connectortest"
	_ "github.com/switchyard-io/switchyard/connectors/webhook"
)

func build(t testing.TB, env connectors.Env, fields map[string]any) connectors.Source {
	t.Helper()
	return connectortest.Build(t, "webhook", env, fields)
}

// post sends body until it is answered 2xx (as webhook senders retry).
func post(t *testing.T, url string, body []byte, hdr map[string]string) {
	t.Helper()
	for range 600 {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("webhook never accepted %s", body)
}

var seq sync.Map

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		Push: true,
		New: func(t *testing.T, env connectors.Env) connectors.Source {
			return build(t, env, map[string]any{})
		},
		Produce: func(t *testing.T, name string, mux *connectortest.Mux, n int) {
			var wg sync.WaitGroup
			for range n {
				v, _ := seq.LoadOrStore(name, new(int))
				p := v.(*int)
				*p++
				body := []byte(fmt.Sprintf(`{"n":%d,"name":%q}`, *p, name))
				wg.Add(1)
				go func() { defer wg.Done(); post(t, mux.URL+"/webhooks/"+name, body, nil) }()
			}
			wg.Wait()
		},
	})
}

func TestSignatures(t *testing.T) {
	mux := connectortest.NewMux(t)
	env := connectortest.Env("signed", &connectortest.MemCheckpoints{}, mux)
	src := build(t, env, map[string]any{"secret": "s3cret", "id_header": "X-GitHub-Delivery", "subject_header": "X-GitHub-Event"})
	ctx := context.Background()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	body := []byte(`{"action": "opened"}`)
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(body)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	cases := map[string]struct {
		sig    string
		body   []byte
		status int
	}{
		"missing signature": {"", body, http.StatusUnauthorized},
		"wrong signature":   {"sha256=" + hex.EncodeToString(make([]byte, 32)), body, http.StatusUnauthorized},
		"not hex":           {"sha256=zz", body, http.StatusUnauthorized},
		"wrong prefix":      {"sha1=" + good[7:], body, http.StatusUnauthorized},
		"tampered body":     {good, []byte(`{"action": "closed"}`), http.StatusUnauthorized},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, mux.URL+"/webhooks/signed", bytes.NewReader(tc.body))
			req.Header.Set("X-Hub-Signature-256", tc.sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	// A good signature is accepted once acknowledged, with id and subject from headers.
	go post(t, mux.URL+"/webhooks/signed", body, map[string]string{"X-Hub-Signature-256": good, "X-GitHub-Delivery": "d-1", "X-GitHub-Event": "pull_request"})
	m, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Event.GetId() != "d-1" || m.Event.GetAttributes()["subject"].GetCeString() != "pull_request" || m.Event.GetTextData() != string(body) {
		t.Fatalf("unexpected event %v", m.Event)
	}
	if err := m.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Nothing else was handed over: the refused requests stored nothing.
	rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if m, err := src.Read(rctx); err == nil {
		t.Fatalf("a refused request produced %v", m.Event)
	}
}

func TestNotJSONAndTooLarge(t *testing.T) {
	mux := connectortest.NewMux(t)
	src := build(t, connectortest.Env("strict", &connectortest.MemCheckpoints{}, mux), map[string]any{"max_body_bytes": 16})
	_ = src.Connect(context.Background())
	for body, want := range map[string]int{"not json": 400, `{"a":"0123456789abcdef"}`: 413} {
		resp, err := http.Post(mux.URL+"/webhooks/strict", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%q: status %d, want %d", body, resp.StatusCode, want)
		}
	}
}

func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte("\xff{"))
	mux := connectortest.NewMux(f)
	src := build(f, connectortest.Env("fuzz", &connectortest.MemCheckpoints{}, mux), map[string]any{})
	_ = src.Connect(context.Background())
	f.Fuzz(func(t *testing.T, body []byte) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if m, err := src.Read(ctx); err == nil {
				_ = m.Ack(ctx, nil)
			}
		}()
		resp, err := http.Post(mux.URL+"/webhooks/fuzz", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != 503 {
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
	})
}
