package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

const cliAdminToken = "admin-0123456789abcdef0123456789abcdef"

// TestTokenCommands: token create prints a key (and says on stderr that it
// is shown once) that then works with --token and SWITCHYARD_TOKEN; token
// list never shows it; token revoke makes it fail; audit list shows the
// actions.
func TestTokenCommands(t *testing.T) {
	b := testenv.Real(t)
	srv, err := server.New(context.Background(), func() server.Config {
		c := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Router: router.Config{Prefix: b.Prefix}}
		c.Auth.AdminToken = cliAdminToken
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	addr := srv.GRPCAddr()

	r := runCLI(t, "", "trigger", "list", "--server", addr)
	if r.e == nil || !strings.Contains(r.e.Error(), "UNAUTHENTICATED") {
		t.Fatalf("without a token: %v", r.e)
	}
	r = runCLI(t, "", "token", "create", "--server", addr, "--token", cliAdminToken,
		"--name", "shop-ops", "--role", "operator", "--role", "publisher", "--triggers", "shop-", "--sources", "/shop/", "--expires", "30d")
	if r.e != nil {
		t.Fatal(r.e)
	}
	key := strings.TrimSpace(r.out)
	if !strings.HasPrefix(key, "syk_") || strings.Contains(key, "\n") {
		t.Fatalf("stdout should be the key alone: %q", r.out)
	}
	if !strings.Contains(r.err, "only time it is shown") || strings.Contains(r.err, key) {
		t.Fatalf("stderr: %q", r.err)
	}

	r = runCLI(t, "name: shop-orders\ntarget: {grpc: \"127.0.0.1:1\"}\n", "trigger", "apply", "-f", "-", "--server", addr, "--token", key)
	if r.e != nil {
		t.Fatal(r.e)
	}
	t.Setenv(EnvToken, key)
	r = runCLI(t, "name: bank-x\ntarget: {grpc: \"127.0.0.1:1\"}\n", "trigger", "apply", "-f", "-", "--server", addr)
	if r.e == nil || !strings.Contains(r.e.Error(), "PERMISSION_DENIED") || !strings.Contains(r.e.Error(), "trigger.name") {
		t.Fatalf("outside the scope, with the key from %s: %v", EnvToken, r.e)
	}
	r = runCLI(t, "", "trigger", "list", "--server", addr, "-o", "json")
	if r.e != nil || !strings.Contains(r.out, "shop-orders") {
		t.Fatalf("%v %s", r.e, r.out)
	}

	r = runCLI(t, "", "token", "list", "--server", addr, "--token", cliAdminToken)
	if r.e != nil || !strings.Contains(r.out, "shop-ops") || !strings.Contains(r.out, "operator,publisher") ||
		!strings.Contains(r.out, "triggers=shop-") || !strings.Contains(r.out, "in 29d") || strings.Contains(r.out, key[21:]) {
		t.Fatalf("%v\n%s", r.e, r.out)
	}
	r = runCLI(t, "", "token", "list", "--server", addr, "--token", cliAdminToken, "-o", "json")
	var listed []map[string]any
	if r.e != nil || json.Unmarshal([]byte(r.out), &listed) != nil || len(listed) != 1 || listed[0]["secret"] != nil {
		t.Fatalf("%v\n%s", r.e, r.out)
	}

	r = runCLI(t, "", "token", "revoke", "shop-ops", "--server", addr, "--token", cliAdminToken)
	if r.e != nil || !strings.Contains(r.out, `"shop-ops" revoked`) {
		t.Fatalf("%v %s", r.e, r.out)
	}
	waitFor(t, 10*time.Second, "the revoked key refused", func() bool {
		r := runCLI(t, "", "trigger", "list", "--server", addr)
		return r.e != nil && strings.Contains(r.e.Error(), "UNAUTHENTICATED")
	})

	r = runCLI(t, "", "audit", "list", "--server", addr, "--token", cliAdminToken, "--since", "1h", "-o", "json")
	var recs []map[string]any
	if r.e != nil || json.Unmarshal([]byte(r.out), &recs) != nil {
		t.Fatalf("%v\n%s", r.e, r.out)
	}
	var actions []string
	for _, rec := range recs {
		actions = append(actions, rec["action"].(string)+":"+rec["outcome"].(string))
	}
	want := "token.create:ok trigger.apply:ok trigger.apply:denied token.revoke:ok"
	if strings.Join(actions, " ") != want {
		t.Fatalf("audit: %v, want %s", actions, want)
	}
	r = runCLI(t, "", "audit", "list", "--server", addr, "--token", cliAdminToken, "--limit", "1")
	if r.e != nil || !strings.Contains(r.out, "token.revoke") || strings.Contains(r.out, "trigger.apply") {
		t.Fatalf("%v\n%s", r.e, r.out)
	}
}

// TestClientFlags: every client command takes the credential flags, the
// environment fills what the flags leave out, and any TLS option turns TLS
// on.
func TestClientFlags(t *testing.T) {
	var all []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		// bench's --server targets a server under test; it has its own
		// options and is not an API client command.
		if c.Flags().Lookup("server") != nil && c.Name() != "bench" {
			all = append(all, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot())
	if len(all) < 15 {
		t.Fatalf("only %d client commands found", len(all))
	}
	for _, c := range all {
		for _, f := range []string{"token", "tls-ca", "tls-cert", "tls-key", "tls-server-name", "timeout"} {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("%s has no --%s", c.CommandPath(), f)
			}
		}
	}

	o := clientOptions{server: "sy.example:9090", timeout: time.Second}
	cfg, err := o.sdkConfig()
	if err != nil || cfg.Token != "" || cfg.TLS != nil {
		t.Fatalf("no flags, no env: %+v %v", cfg, err)
	}
	t.Setenv(EnvToken, "from-env")
	t.Setenv(EnvTLSCA, "/ca.pem")
	t.Setenv(EnvTLSServerName, "sy.internal")
	cfg, err = o.sdkConfig()
	if err != nil || cfg.Token != "from-env" || cfg.TLS == nil || *cfg.TLS != (sdk.TLSConfig{CAFile: "/ca.pem", ServerName: "sy.internal"}) {
		t.Fatalf("from the environment: %+v %v", cfg, err)
	}
	o.token, o.tls.CAFile = "from-flag", "/flag-ca.pem"
	cfg, _ = o.sdkConfig()
	if cfg.Token != "from-flag" || cfg.TLS.CAFile != "/flag-ca.pem" {
		t.Fatalf("flags win: %+v", cfg)
	}

	// A token bound for a remote server without TLS is refused before
	// anything is sent, with the way out in the message.
	t.Setenv(EnvTLSCA, "")
	t.Setenv(EnvTLSServerName, "")
	r := runCLI(t, "", "trigger", "list", "--server", "sy.example:9090", "--token", "x")
	if r.e == nil || !strings.Contains(r.e.Error(), "plaintext") {
		t.Fatalf("%v", r.e)
	}
	// The token is never shown as a flag default in help output.
	r = runCLI(t, "", "trigger", "list", "--help")
	if strings.Contains(r.out, "from-env") {
		t.Fatal("help output shows the token")
	}
}
