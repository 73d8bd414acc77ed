package cli

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/internal/testpki"
	"github.com/switchyard-io/switchyard/server"
)

// TestServeFlagsCoverConfigKeys: every configuration key that names a flag
// in its tags (docs/config.md shows it) has that flag on serve.
func TestServeFlagsCoverConfigKeys(t *testing.T) {
	serve, _, err := NewRoot().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	for f := range reflect.TypeFor[server.FileConfig]().Fields() {
		if name := f.Tag.Get("flag"); name != "" && serve.Flags().Lookup(name) == nil {
			t.Errorf("%s: serve has no --%s", f.Tag.Get("json"), name)
		}
	}
}

func TestServeCheckConfigTLS(t *testing.T) {
	t.Setenv("SWITCHYARD_REDIS_URL", "")
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	cert, key := ca.Issue(t, "switchyard", "localhost").Write(t, dir, "server")
	caFile := ca.WriteCA(t, dir, "clients.pem")
	for name, tc := range map[string]struct {
		file string
		args []string
		err  []string // substrings; none: "configuration ok"
	}{
		"tls in the file":    {file: "tls_cert_file: " + cert + "\ntls_key_file: " + key + "\ntls_client_ca_file: " + caFile + "\ntls_client_auth: request\n"},
		"tls by flags":       {args: []string{"--tls-cert-file", cert, "--tls-key-file", key, "--max-connections", "10", "--http-body-timeout", "5s"}},
		"a cert without key": {args: []string{"--tls-cert-file", cert}, err: []string{"tls_cert_file and tls_key_file", "give both"}},
		"a missing file":     {file: "tls_cert_file: " + dir + "/gone.crt\ntls_key_file: " + key + "\n", err: []string{"gone.crt"}},
		"a bad client auth":  {args: []string{"--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", caFile, "--tls-client-auth", "sometimes"}, err: []string{"tls_client_auth", "want require or request"}},
		"limits":             {file: "max_connections: -1\n", err: []string{"max_connections"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "", append([]string{"serve", "--config", writeConfig(t, tc.file), "--check-config"}, tc.args...)...)
			if len(tc.err) == 0 {
				if r.e != nil || !strings.HasPrefix(r.out, "configuration ok") {
					t.Fatalf("err %v, out %q", r.e, r.out)
				}
				return
			}
			if r.e == nil || ExitCode(r.e) != 2 {
				t.Fatalf("want exit 2, got %v (out %q)", r.e, r.out)
			}
			for _, want := range tc.err {
				if !strings.Contains(r.e.Error(), want) {
					t.Errorf("%q not in %v", want, r.e)
				}
			}
		})
	}
}

// TestClientTLSFlagsAgainstMTLS is the acceptance test of the listeners'
// mTLS with the CLI's client flags: a client certificate from the client
// CA is an identity (its roles from auth.identities), one from another CA
// is refused, and so is plaintext; where certificates are only requested,
// a bearer token over TLS works instead, and no credential at all is
// unauthenticated.
func TestClientTLSFlagsAgainstMTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clients := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "client CA")
	cert, key := serverCA.Issue(t, "switchyard", "127.0.0.1").Write(t, dir, "server")
	serverCAFile, clientCAFile := serverCA.WriteCA(t, dir, "server-ca.pem"), clients.WriteCA(t, dir, "clients.pem")
	opsCert, opsKey := clients.Issue(t, "ops").Write(t, dir, "ops")
	strangerCert, strangerKey := testpki.NewCA(t, "another CA").Issue(t, "ops").Write(t, dir, "stranger")
	const adminToken = "an-admin-token-of-at-least-32-characters"

	for _, mode := range []string{server.ClientAuthRequire, server.ClientAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			srv, err := server.New(t.Context(), server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
				TLS: server.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: clientCAFile, ClientAuth: mode},
				Auth: auth.Config{AdminToken: adminToken, Identities: []auth.StaticIdentity{
					{Subject: "ops", Method: auth.MethodMTLS, Roles: []auth.Role{auth.RoleViewer}}}},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			srv.Serve()
			t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
			list := func(args ...string) result {
				return runCLI(t, "", append([]string{"trigger", "list", "-o", "json", "--timeout", "5s", "--server", srv.GRPCAddr()}, args...)...)
			}

			r := list("--tls-ca", serverCAFile, "--tls-cert", opsCert, "--tls-key", opsKey)
			if r.e != nil || strings.TrimSpace(r.out) != "[]" {
				t.Fatalf("the client CA's certificate: err %v, out %q", r.e, r.out)
			}
			r = list("--tls-ca", serverCAFile, "--tls-cert", strangerCert, "--tls-key", strangerKey)
			if r.e == nil {
				t.Fatal("a certificate from another CA was accepted")
			}
			if r = list(); r.e == nil {
				t.Fatal("plaintext was accepted")
			}
			r = list("--tls-ca", serverCAFile, "--token", adminToken)
			switch mode {
			case server.ClientAuthRequire:
				if r.e == nil {
					t.Fatal("a token without the required certificate was accepted")
				}
			case server.ClientAuthRequest:
				if r.e != nil {
					t.Fatalf("a token over TLS, no certificate: %v", r.e)
				}
				r = list("--tls-ca", serverCAFile)
				if r.e == nil || !strings.Contains(r.e.Error(), "UNAUTHENTICATED") {
					t.Fatalf("no credential at all: %v", r.e)
				}
			}
		})
	}
}

// TestHealthOverTLS: health asks an https:// readiness URL, trusting
// --tls-ca and presenting --tls-cert when the server requires one.
func TestHealthOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	cert, key := ca.Issue(t, "switchyard", "127.0.0.1").Write(t, dir, "server")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	clientCert, clientKey := ca.Issue(t, "probe").Write(t, dir, "probe")
	srv, err := server.New(t.Context(), server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		TLS:    server.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: caFile, ClientAuth: server.ClientAuthRequire},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	url := "https://" + srv.HTTPAddr() + "/readyz"

	r := runCLI(t, "", "health", "--url", url, "--tls-ca", caFile, "--tls-cert", clientCert, "--tls-key", clientKey)
	if r.e != nil || strings.TrimSpace(r.out) != "ready" {
		t.Fatalf("err %v, out %q", r.e, r.out)
	}
	r = runCLI(t, "", "health", "--url", url, "--tls-ca", caFile)
	if r.e == nil || ExitCode(r.e) != 1 {
		t.Fatalf("without the required client certificate: %v", r.e)
	}
	r = runCLI(t, "", "health", "--url", url, "--tls-cert", clientCert)
	if r.e == nil || ExitCode(r.e) != 2 || !strings.Contains(r.e.Error(), "--tls-key") {
		t.Fatalf("a certificate without its key: %v", r.e)
	}
}
