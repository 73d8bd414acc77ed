package authhttp_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/auth/authhttp"
	"github.com/switchyard-io/switchyard/auth/internal/authtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

const adminToken = "bootstrap-0123456789abcdef0123456789abcdef"

// mux stands in for the server's listener: /events makes the handler-side
// scope decision on the "ce-source" header, the others answer with the
// caller's subject.
func mux() http.Handler {
	m := http.NewServeMux()
	who := func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok {
			_, _ = w.Write([]byte("public"))
			return
		}
		_, _ = w.Write([]byte(id.Subject))
	}
	m.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		if err := id.AllowPublish(r.Header.Get("ce-source"), r.Header.Get("ce-type")); err != nil {
			authhttp.WriteError(w, r, err)
			return
		}
		who(w, r)
	})
	m.HandleFunc("/metrics", who)
	m.HandleFunc("/healthz", who)
	m.HandleFunc("/webhooks/", who)
	m.HandleFunc("/secret", who)
	return m
}

type result struct {
	code    int
	body    string
	problem authhttp.Problem
	header  http.Header
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string][]string) result {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{code: resp.StatusCode, body: string(b), header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(b, &r.problem); err != nil {
			t.Fatalf("problem body %q: %v", b, err)
		}
	}
	return r
}

func bearer(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}}
}

func TestMiddleware(t *testing.T) {
	b := testenv.Real(t)
	a, err := auth.New(auth.Config{KeyPrefix: b.Prefix, AdminToken: adminToken}, b.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	pub, _, err := a.Keys().Create(ctx, auth.Anonymous(), auth.KeySpec{Name: "pub", Roles: []auth.Role{auth.RolePublisher}, Scope: auth.Scope{Sources: []string{"/shop/"}}})
	if err != nil {
		t.Fatal(err)
	}
	viewer, _, err := a.Keys().Create(ctx, auth.Anonymous(), auth.KeySpec{Name: "viewer", Roles: []auth.Role{auth.RoleViewer}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(authhttp.Middleware(a, authhttp.DefaultPolicy(), mux()))
	defer srv.Close()
	c := srv.Client()

	t.Run("no token", func(t *testing.T) {
		r := do(t, c, "POST", srv.URL+"/events", nil)
		if r.code != 401 || r.problem.Type != "/problems/unauthenticated" || r.header.Get("WWW-Authenticate") != `Bearer realm="switchyard"` {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		r := do(t, c, "POST", srv.URL+"/events", bearer("syk_garbage"))
		if r.code != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) || strings.Contains(r.body, "garbage") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		r := do(t, c, "POST", srv.URL+"/events", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}})
		if r.code != 401 || strings.Contains(r.body, "dXNlcjpwYXNz") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("two Authorization headers", func(t *testing.T) {
		r := do(t, c, "POST", srv.URL+"/events", map[string][]string{"Authorization": {"Bearer " + pub, "Bearer " + adminToken}})
		if r.code != 401 || !strings.Contains(r.problem.Detail, "more than one") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("publisher publishes in scope", func(t *testing.T) {
		h := bearer(pub)
		h["ce-source"], h["ce-type"] = []string{"/shop/orders"}, []string{"t"}
		if r := do(t, c, "POST", srv.URL+"/events", h); r.code != 200 || r.body != "pub" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("publisher out of scope names the attribute", func(t *testing.T) {
		h := bearer(pub)
		h["ce-source"], h["ce-type"] = []string{"/bank/x"}, []string{"t"}
		r := do(t, c, "POST", srv.URL+"/events", h)
		if r.code != 403 || len(r.problem.Errors) != 1 || r.problem.Errors[0].Attribute != "source" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("metrics need metrics.read", func(t *testing.T) {
		if r := do(t, c, "GET", srv.URL+"/metrics", bearer(pub)); r.code != 403 || !strings.Contains(r.problem.Detail, string(auth.PermMetricsRead)) {
			t.Fatalf("%+v", r)
		}
		if r := do(t, c, "GET", srv.URL+"/metrics", bearer(viewer)); r.code != 200 || r.body != "viewer" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("public paths", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/webhooks/github"} {
			if r := do(t, c, "GET", srv.URL+p, nil); r.code != 200 || r.body != "public" {
				t.Fatalf("%s: %+v", p, r)
			}
		}
	})
	t.Run("a path missing from the policy is denied", func(t *testing.T) {
		if r := do(t, c, "GET", srv.URL+"/secret", bearer(adminToken)); r.code != 403 || !strings.Contains(r.problem.Detail, "permission table") {
			t.Fatalf("%+v", r)
		}
		if r := do(t, c, "GET", srv.URL+"/secret", nil); r.code != 401 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("dot segments are judged as the mux routes them", func(t *testing.T) {
		// /healthz is public, but /healthz/../metrics is /metrics.
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		req.URL.Path = "/healthz/../metrics"
		resp, err := c.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		req.URL.Path = "/webhooks/../secret"
		resp, err = c.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

func TestMiddlewareMTLS(t *testing.T) {
	serverCA, clientCA, otherCA := authtest.NewCA(t, "server"), authtest.NewCA(t, "client"), authtest.NewCA(t, "other")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, clientCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{AdminToken: adminToken, APIKeys: auth.APIKeyConfig{Disabled: true},
		MTLS:       auth.MTLSConfig{ClientCAFile: caFile},
		Identities: []auth.StaticIdentity{{Subject: "prometheus", Roles: []auth.Role{auth.RoleViewer}}},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewUnstartedServer(authhttp.Middleware(a, authhttp.DefaultPolicy(), mux()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCA.Server(t)}}
	a.ConfigureServerTLS(srv.TLS)
	srv.StartTLS()
	defer srv.Close()
	client := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: serverCA.Pool()}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	good, bad := clientCA.Client(t, "prometheus", ""), otherCA.Client(t, "prometheus", "")
	if r := do(t, client(&good), "GET", srv.URL+"/metrics", nil); r.code != 200 || r.body != "prometheus" {
		t.Fatalf("%+v", r)
	}
	if _, err := client(&bad).Get(srv.URL + "/metrics"); err == nil {
		t.Fatal("a certificate from another CA got through")
	}
	// A certificate is optional here (a bearer token works too).
	if r := do(t, client(nil), "GET", srv.URL+"/metrics", bearer(adminToken)); r.code != 200 || r.body != auth.BootstrapSubject {
		t.Fatalf("%+v", r)
	}
	// Plain HTTP to the TLS listener gets nothing useful.
	if r, err := http.Get("http://" + strings.TrimPrefix(srv.URL, "https://") + "/metrics"); err == nil {
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("plaintext got %d", r.StatusCode)
		}
	}
}

func TestProblemFor(t *testing.T) {
	cases := map[string]struct {
		err    error
		status int
		attr   string
		field  string
	}{
		"unauthenticated": {&auth.UnauthenticatedError{Reason: "x"}, 401, "", ""},
		"denied":          {&auth.DeniedError{Permission: auth.PermPublish}, 403, "", ""},
		"type":            {&auth.DeniedError{Permission: auth.PermPublish, Field: "type", Value: "x"}, 403, "type", ""},
		"hops":            {&auth.DeniedError{Permission: auth.PermSetHops, Field: auth.HopsAttribute}, 403, auth.HopsAttribute, ""},
		"trigger":         {&auth.DeniedError{Permission: auth.PermTriggersWrite, Field: "trigger", Value: "x"}, 403, "", "trigger"},
		"unavailable":     {auth.ErrUnavailable, 503, "", ""},
		"internal":        {errors.New("boom password=x"), 500, "", ""},
	}
	for name, c := range cases {
		p := authhttp.ProblemFor(c.err)
		if p.Status != c.status {
			t.Errorf("%s: status %d", name, p.Status)
		}
		if c.attr != "" && (len(p.Errors) != 1 || p.Errors[0].Attribute != c.attr) {
			t.Errorf("%s: errors %+v", name, p.Errors)
		}
		if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
			t.Errorf("%s: errors %+v", name, p.Errors)
		}
		if strings.Contains(p.Detail, "password") {
			t.Errorf("%s: internal text leaked", name)
		}
	}
	w := httptest.NewRecorder()
	authhttp.WriteError(w, httptest.NewRequest("GET", "/", nil), auth.ErrUnavailable)
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}
