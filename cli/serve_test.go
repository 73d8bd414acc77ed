package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	_ "github.com/switchyard-io/switchyard/connectors/all"
	"github.com/switchyard-io/switchyard/server"
)

// TestFlagUsageHasNoBackticks: pflag takes a `quoted` word of a usage
// string as the flag's value name, so "the `sources:` to run" printed as
// "--config sources:   … the sources: to run".
func TestFlagUsageHasNoBackticks(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: backtick in %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot())
	r := runCLI(t, "", "serve", "--help")
	if r.e != nil {
		t.Fatal(r.e)
	}
	if !strings.Contains(r.out, "--config string ") || !strings.Contains(r.out, "--allow-volatile-sources") {
		t.Fatalf("serve --help:\n%s", r.out)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const cdcConfig = `
sources:
  - name: shop-db
    kind: postgres
    fields:
      dsn: postgres://postgres@127.0.0.1:5432/shop
      tables: [public.orders]
`

func TestServeCheckConfig(t *testing.T) {
	t.Setenv("SWITCHYARD_REDIS_URL", "")
	for name, tc := range map[string]struct {
		file string
		args []string
		err  []string // substrings; none: "configuration ok"
	}{
		"cdc on the embedded store is refused": {
			file: cdcConfig,
			err:  []string{`sources[0] "shop-db" (postgres)`, "replication slot", "--allow-volatile-sources"},
		},
		"allowed by flag":       {file: cdcConfig, args: []string{"--allow-volatile-sources"}},
		"allowed by the file":   {file: cdcConfig + "allow_volatile_sources: true\n"},
		"with a redis url":      {file: cdcConfig, args: []string{"--redis-url", "redis://127.0.0.1:6379/0"}},
		"redis url in the file": {file: cdcConfig + "redis_url: redis://127.0.0.1:6379/0\n"},
		"a prefix that shifts the key layout": {
			file: "key_prefix: 'a}{b'\n",
			err:  []string{`key_prefix "a}{b"`},
		},
		"the flag's prefix is checked too":            {file: "", args: []string{"--key-prefix", "x*"}, err: []string{`key_prefix "x*"`}},
		"a bad log level in the file":                 {file: "log_level: loud\n", err: []string{"log_level: want debug, info, warn or error"}},
		"the file is checked even when the flag wins": {file: "log_level: loud\n", args: []string{"--log-level", "warn"}, err: []string{"log_level"}},
		"a bad log level flag":                        {file: "log_level: warn\n", args: []string{"--log-level", "loud"}, err: []string{"--log-level"}},
		"file log settings":                           {file: "log_level: warn\nlog_format: text\n"},
		"an unset variable":                           {file: "redis_url: ${SWITCHYARD_TEST_SURELY_UNSET}\n", err: []string{"line 1: redis_url: ${SWITCHYARD_TEST_SURELY_UNSET} is not set"}},
		"egress settings in the file":                 {file: "allow_targets: [10.1.0.0/16, 'fn.internal:443']\nloopback_targets: deny\nrequire_target_tls: true\n"},
		"a bad allowlist entry":                       {file: "", args: []string{"--allow-targets", "10.1.0.0/99"}, err: []string{"allow targets", "10.1.0.0/99"}},
		"a bad loopback mode":                         {file: "loopback_targets: sometimes\n", err: []string{"loopback_targets: want auto, allow or deny"}},
		"a target key without its certificate":        {file: "", args: []string{"--target-key-file", "/nonexistent.key"}, err: []string{"client certificate and key go together"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "", append([]string{"serve", "--config", writeConfig(t, tc.file), "--check-config"}, tc.args...)...)
			if len(tc.err) == 0 {
				// "configuration ok", then the security report.
				if r.e != nil || !strings.HasPrefix(r.out, "configuration ok\nsecurity: OFF authentication:") {
					t.Fatalf("err %v, out %q", r.e, r.out)
				}
				return
			}
			if r.e == nil {
				t.Fatalf("accepted: %q", r.out)
			}
			for _, want := range tc.err {
				if !strings.Contains(r.e.Error(), want) {
					t.Errorf("%q not in %v", want, r.e)
				}
			}
			if name == "cdc on the embedded store is refused" && !errors.Is(r.e, server.ErrVolatileSource) {
				t.Errorf("not ErrVolatileSource: %v", r.e)
			}
		})
	}
}

func TestHealthAsksReadyz(t *testing.T) {
	srv, err := server.New(t.Context(), server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	url := "http://" + srv.HTTPAddr() + "/readyz"
	r := runCLI(t, "", "health", "--url", url)
	if r.e != nil || strings.TrimSpace(r.out) != "ready" {
		t.Fatalf("ready server: err %v, out %q", r.e, r.out)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "", "health", "--url", url)
	if r.e == nil || ExitCode(r.e) != 1 || !strings.Contains(r.e.Error(), "not ready") {
		t.Fatalf("stopped server: err %v", r.e)
	}
	// A non-2xx answer is not ready either, and is shown.
	unready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"title":"Store unavailable"}`))
	}))
	defer unready.Close()
	r = runCLI(t, "", "health", "--url", unready.URL+"/readyz")
	if r.e == nil || !strings.Contains(r.e.Error(), "503") || !strings.Contains(r.e.Error(), "Store unavailable") {
		t.Fatalf("503: err %v", r.e)
	}
}

// The security report shows the egress guard (always on) and whether
// targets must use TLS, as the flags set them.
func TestServeCheckConfigReportsEgress(t *testing.T) {
	t.Setenv("SWITCHYARD_REDIS_URL", "")
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"quickstart": {want: []string{
			"security: on  egress guard: loopback targets allowed (both listeners are on loopback)",
			"security: OFF target TLS: off: triggers may deliver in plaintext (--require-target-tls refuses grpc host:port and http:// targets)",
		}},
		"locked down": {args: []string{"--loopback-targets", "deny", "--allow-targets", "10.1.0.0/16,fn.internal:443", "--require-target-tls"}, want: []string{
			"security: on  egress guard: loopback, link-local (metadata), private, CGNAT and multicast targets denied; opened by --allow-targets: 10.1.0.0/16,fn.internal:443",
			"security: on  target TLS: plaintext targets (grpc host:port, http://) refused",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "", append([]string{"serve", "--check-config"}, tc.args...)...)
			if r.e != nil {
				t.Fatal(r.e)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w+"\n") {
					t.Errorf("%q not in\n%s", w, r.out)
				}
			}
		})
	}
}
