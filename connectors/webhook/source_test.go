package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
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

// insecure is the fields of a source that takes unsigned requests.
func insecure(more map[string]any) map[string]any {
	f := map[string]any{"insecure": true}
	for k, v := range more {
		f[k] = v
	}
	return f
}

var jsonType = map[string]string{"Content-Type": "application/json"}

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
			return build(t, env, insecure(nil))
		},
		Produce: func(t *testing.T, name string, mux *connectortest.Mux, n int) {
			var wg sync.WaitGroup
			for range n {
				v, _ := seq.LoadOrStore(name, new(int))
				p := v.(*int)
				*p++
				body := []byte(fmt.Sprintf(`{"n":%d,"name":%q}`, *p, name))
				wg.Add(1)
				go func() { defer wg.Done(); post(t, mux.URL+"/webhooks/"+name, body, jsonType) }()
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
		"header too large":  {good + strings.Repeat("0", 5000), body, http.StatusRequestHeaderFieldsTooLarge},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, mux.URL+"/webhooks/signed", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", tc.sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, answer)
			}
			if resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("refusal is not a problem: %s", answer)
			}
		})
	}
	// A good signature is accepted once acknowledged, with id and subject from headers.
	go post(t, mux.URL+"/webhooks/signed", body, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": good, "X-GitHub-Delivery": "d-1", "X-GitHub-Event": "pull_request"})
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
	src := build(t, connectortest.Env("strict", &connectortest.MemCheckpoints{}, mux), insecure(map[string]any{"max_body_bytes": 16}))
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

// TestContentTypes: the content types a browser posts cross-site without
// asking (forms, text/plain, none) are refused with 415 unless configured.
func TestContentTypes(t *testing.T) {
	mux := connectortest.NewMux(t)
	strict := build(t, connectortest.Env("strict", &connectortest.MemCheckpoints{}, mux), insecure(nil))
	lax := build(t, connectortest.Env("lax", &connectortest.MemCheckpoints{}, mux), insecure(map[string]any{"content_types": []any{"application/json", "text/plain"}}))
	ctx := context.Background()
	for _, src := range []connectors.Source{strict, lax} {
		if err := src.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		go func() { // store whatever is accepted
			for {
				m, err := src.Read(ctx)
				if err != nil {
					return
				}
				_ = m.Ack(ctx, nil)
			}
		}()
		t.Cleanup(func() { _ = src.Close(ctx) })
	}
	cases := []struct {
		source, contentType string
		want                int
	}{
		{"strict", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"strict", "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"strict", "text/plain;charset=UTF-8", http.StatusUnsupportedMediaType},
		{"strict", "", http.StatusUnsupportedMediaType},
		{"strict", "application/json;;", http.StatusUnsupportedMediaType},
		{"strict", "Application/JSON; charset=utf-8", http.StatusAccepted},
		{"lax", "text/plain;charset=UTF-8", http.StatusAccepted},
		{"lax", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
	}
	for i, tc := range cases {
		req, _ := http.NewRequest(http.MethodPost, mux.URL+"/webhooks/"+tc.source, strings.NewReader(fmt.Sprintf(`{"case":%d}`, i)))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s, Content-Type %q: status %d, want %d: %s", tc.source, tc.contentType, resp.StatusCode, tc.want, answer)
		}
	}
}

func TestMissingSecretRefusesToStart(t *testing.T) {
	mux := connectortest.NewMux(t)
	for name, fields := range map[string]map[string]any{
		"no secret":    {},
		"empty secret": {"secret": ""}, // an unset ${VAR} used to end here
	} {
		t.Run(name, func(t *testing.T) {
			_, err := connectors.NewRunner(connectors.RunnerConfig{}, connectors.Default, nil,
				func(string) connectors.Env { return connectors.Env{HTTP: mux} },
				[]connectors.SourceConfig{{Name: "hooks", Kind: "webhook", Fields: fields}})
			if err == nil || !strings.Contains(err.Error(), "sources[0]: fields.secret: required") || !strings.Contains(err.Error(), "insecure: true") {
				t.Fatalf("want an error naming sources[0] fields.secret and insecure, got %v", err)
			}
		})
	}
}

// syncBuffer is a log destination tests read while the source writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestInsecureStartsWithAWarning(t *testing.T) {
	mux := connectortest.NewMux(t)
	var logs syncBuffer
	env := connectortest.Env("open", &connectortest.MemCheckpoints{}, mux)
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	src := build(t, env, insecure(nil))
	sink := &connectortest.Sink{}
	runSource(t, src, sink)
	status, _ := send(t, mux.URL+"/webhooks/open", []byte(`{"open":true}`), http.Header{"Content-Type": {"application/json"}})
	if status != http.StatusAccepted {
		t.Fatalf("status %d, want 202", status)
	}
	if ids, _ := sink.IDs(); len(ids) != 1 {
		t.Fatalf("want 1 event stored, got %d", len(ids))
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "accepts unsigned requests") {
		t.Fatalf("no warning about unsigned requests in %q", logs.String())
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	spec, _ := connectors.Default.Lookup("webhook")
	mux := connectortest.NewMux(t)
	cases := map[string]struct {
		fields map[string]any
		want   []string
	}{
		"unknown scheme":            {map[string]any{"secret": "s", "scheme": "svix"}, []string{"fields.scheme", `"svix"`}},
		"insecure with a secret":    {map[string]any{"secret": "s", "insecure": true}, []string{"fields.insecure"}},
		"insecure with a scheme":    {map[string]any{"insecure": true, "scheme": "standard"}, []string{"fields.scheme"}},
		"standard with id_header":   {map[string]any{"secret": "whsec_c2VjcmV0", "scheme": "standard", "id_header": "X-Id"}, []string{"fields.id_header", "webhook-id"}},
		"standard with bad base64":  {map[string]any{"secret": "whsec_!!!not-base64", "scheme": "standard"}, []string{"fields.secret", "base64"}},
		"github with an hmac field": {map[string]any{"secret": "s", "scheme": "github", "signature_header": "X-Sig", "algorithm": "sha1"}, []string{"fields.signature_header", "fields.algorithm"}},
		"bad algorithm":             {map[string]any{"secret": "s", "algorithm": "md5"}, []string{"fields.algorithm", `"md5"`}},
		"tolerance too small":       {map[string]any{"secret": "s", "scheme": "stripe", "tolerance": "100ms"}, []string{"fields.tolerance"}},
		"dedup window zero":         {map[string]any{"secret": "s", "dedup_window": "0s"}, []string{"fields.dedup_window"}},
		"bad content type":          {map[string]any{"secret": "s", "content_types": []any{"json"}}, []string{"fields.content_types", `"json"`}},
		"no content type":           {map[string]any{"secret": "s", "content_types": []any{}}, []string{"fields.content_types"}},
		"bad source":                {map[string]any{"secret": "s", "source": "%zz"}, []string{"fields.source"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := spec.Build("fields", tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			_, err = spec.New(connectors.Env{Name: "hooks", HTTP: mux}, cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q not in %v", w, err)
				}
			}
			if strings.Contains(err.Error(), "not-base64") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// runSource runs src under a connectors.Runner that publishes into sink, as
// the server does, until the test ends.
func runSource(t *testing.T, src connectors.Source, sink connectors.Sink) {
	t.Helper()
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "under_test", Summary: "the webhook source under test",
		New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "under-test", Kind: "under_test"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("runner did not stop: %v", err)
		}
	})
}

// send posts body with hdr and returns the status and the decoded answer.
// It retries while the answer is 503, as senders do (the source is not
// running yet, or a copy of the request is being stored).
func send(t *testing.T, url string, body []byte, hdr http.Header) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("status %d, answer not JSON: %q", resp.StatusCode, raw)
		}
		out["_raw"] = string(raw)
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return resp.StatusCode, out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte("\xff{"))
	mux := connectortest.NewMux(f)
	src := build(f, connectortest.Env("fuzz", &connectortest.MemCheckpoints{}, mux), insecure(nil))
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
