package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
)

const testAdminToken = "admin-0123456789abcdef0123456789abcdef"

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(b testenv.Backend) Config {
	return Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: b.URL, Logger: quietLogger(),
		Router: router.Config{Prefix: b.Prefix},
	}
}

// TestNewRPCWithoutPermissionFailsStart: a service registered on the gRPC
// server whose methods the permission table does not list stops the
// server from starting, naming them, so an RPC added later can never ship
// unauthorized. Without authentication the rule holds too.
func TestNewRPCWithoutPermissionFailsStart(t *testing.T) {
	b := testenv.Real(t)
	registerExtra = func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, testgrpc.UnimplementedTestServiceServer{}) }
	t.Cleanup(func() { registerExtra = nil })
	for name, adminToken := range map[string]string{"auth on": testAdminToken, "auth off": ""} {
		cfg := testConfig(b)
		cfg.Auth.AdminToken = adminToken
		s, err := New(context.Background(), cfg)
		if err == nil {
			_ = s.Shutdown(context.Background())
			t.Fatalf("%s: the server started with an unlisted service", name)
		}
		if !strings.Contains(err.Error(), "/grpc.testing.TestService/UnaryCall") || !strings.Contains(err.Error(), "without a permission") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Every service the server registers itself is in the table: it starts.
	registerExtra = nil
	cfg := testConfig(b)
	cfg.Auth.AdminToken = testAdminToken
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
}

// TestSafeByDefault: without authentication the default addresses are
// loopback, a non-loopback one is refused with a precise error naming the
// flag and the way out, and --insecure-no-auth allows it.
func TestSafeByDefault(t *testing.T) {
	var off Config
	off.setDefaults()
	if off.HTTPAddr != LoopbackHTTPAddr || off.GRPCAddr != LoopbackGRPCAddr {
		t.Fatalf("defaults without authentication: %s %s", off.HTTPAddr, off.GRPCAddr)
	}
	on := Config{Auth: auth.Config{AdminToken: testAdminToken}}
	on.setDefaults()
	if on.HTTPAddr != DefaultHTTPAddr || on.GRPCAddr != DefaultGRPCAddr {
		t.Fatalf("defaults with authentication: %s %s", on.HTTPAddr, on.GRPCAddr)
	}
	for addr, loop := range map[string]bool{
		"127.0.0.1:8080": true, "127.3.4.5:1": true, "[::1]:9090": true, "localhost:0": true, "LOCALHOST:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:1": false, "10.0.0.1:80": false, "example.com:80": false,
		"localhost.evil.com:1": false, "[::ffff:127.0.0.1]:1": true, "garbage": false,
	} {
		if got := isLoopbackHost(addr); got != loop {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", addr, got, loop)
		}
	}

	b := testenv.Real(t)
	cfg := testConfig(b)
	cfg.GRPCAddr = "0.0.0.0:0"
	_, err := New(context.Background(), cfg)
	if !errors.Is(err, ErrOpenWithoutAuth) || !strings.Contains(err.Error(), `--grpc-addr "0.0.0.0:0"`) ||
		!strings.Contains(err.Error(), "--insecure-no-auth") || strings.Contains(err.Error(), "--http-addr") {
		t.Fatalf("got %v", err)
	}
	if err := Check(cfg); !errors.Is(err, ErrOpenWithoutAuth) {
		t.Fatalf("--check-config: %v", err)
	}
	cfg.Auth.AdminToken = testAdminToken
	if err := Check(cfg); err != nil {
		t.Fatalf("with authentication: %v", err)
	}
}

// syncBuffer is a log sink safe for the warner's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// TestInsecureNoAuthWarnsUntilShutdown: a server told --insecure-no-auth
// on a non-loopback address starts, warns at once and then every
// interval, and its warner is stopped by Shutdown.
func TestInsecureNoAuthWarnsUntilShutdown(t *testing.T) {
	old := insecureWarnEvery
	insecureWarnEvery = 20 * time.Millisecond
	t.Cleanup(func() { insecureWarnEvery = old })
	b := testenv.Real(t)
	logs := &syncBuffer{}
	cfg := testConfig(b)
	cfg.HTTPAddr, cfg.InsecureNoAuth = "0.0.0.0:0", true
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	const warning = "authentication is off and the server listens beyond loopback"
	testenv.Eventually(t, 10*time.Second, func() bool { return logs.count(warning) >= 3 }, "repeated warnings")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := logs.count(warning)
	time.Sleep(5 * insecureWarnEvery) // nothing to wait for: the warner must be gone
	if got := logs.count(warning); got != n {
		t.Fatalf("warned %d more times after Shutdown", got-n)
	}
}

// TestLoopbackStartSaysAuthIsOff: a server without authentication says at
// start that it listens on loopback only, and how to change that.
func TestLoopbackStartSaysAuthIsOff(t *testing.T) {
	logs := &syncBuffer{}
	cfg := testConfig(testenv.Real(t))
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	defer s.Shutdown(context.Background())
	if logs.count("authentication is off: listening on loopback only") != 1 || logs.count(auth.EnvAdminToken) != 1 {
		t.Fatalf("start-up logs:\n%s", logs.b.String())
	}
}

// TestConfigFileAuth: the file's auth section is validated with paths
// under "auth.", the flag wins over the file's admin_token_file, and the
// security report names what is off.
func TestConfigFileAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "switchyard.yaml")
	tokFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokFile, []byte(testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("auth:\n  jwt: {jwks_url: 'https://idp.example/jwks'}\n  api_keys: {revocation_delay: 1h}\n")
	fc, err := LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	fc.Apply(&cfg)
	err = Check(cfg)
	var fe auth.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	paths := map[string]bool{}
	for _, e := range fe {
		paths[e.Path] = true
	}
	for _, p := range []string{"auth.jwt.issuer", "auth.jwt.audiences", "auth.api_keys.revocation_delay"} {
		if !paths[p] {
			t.Errorf("no error at %s: %v", p, err)
		}
	}

	write("auth:\n  admin_token_file: /nonexistent\n  admin_token: in-the-file-is-refused\n")
	if _, err := LoadFile(file); err == nil || !strings.Contains(err.Error(), "admin_token") {
		t.Fatalf("the admin token itself in the file: %v", err)
	}
	write("auth:\n  admin_token_file: /nonexistent\n")
	fc, err = LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg = Config{Auth: auth.Config{AdminTokenFile: tokFile}} // --admin-token-file
	fc.Apply(&cfg)
	if err := Check(cfg); err != nil {
		t.Fatalf("the flag's file should win: %v", err)
	}
	report := SecurityReport(cfg)
	byName := map[string]SecuritySetting{}
	for _, s := range report {
		byName[s.Name] = s
	}
	if !byName["authentication"].On || !byName["api keys"].On || byName["listener tls"].On {
		t.Fatalf("report with authentication: %+v", report)
	}
	if !strings.Contains(byName["api keys"].Detail, "refused within 1s") {
		t.Fatalf("api keys: the effective revocation delay, got %+v", byName["api keys"])
	}
	if !strings.Contains(byName["listeners"].Detail, DefaultHTTPAddr) {
		t.Fatalf("listeners: %+v", byName["listeners"])
	}
	off := SecurityReport(Config{})
	if off[0].Name != "authentication" || off[0].On || !strings.Contains(off[1].Detail, LoopbackHTTPAddr) {
		t.Fatalf("report without authentication: %+v", off)
	}
	open := SecurityReport(Config{HTTPAddr: ":1", InsecureNoAuth: true})
	if open[1].On || !strings.Contains(open[1].Detail, "--insecure-no-auth") {
		t.Fatalf("report of an open server: %+v", open)
	}
}

func FuzzIsLoopbackHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:1", "localhost:0", ":80", "0.0.0.0:1", "[::ffff:7f00:1]:1", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if !isLoopbackHost(addr) {
			return
		}
		// Only loopback may pass: "localhost" or a loopback IP literal.
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q passed without a port", addr)
		}
		if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("%q passed as loopback", addr)
		}
	})
}

// FuzzAuthorizePublish: a scoped publisher's batch is refused exactly when
// one event lies outside its prefixes or sets the hop count, and the
// refusal names the first such event and its attribute.
func FuzzAuthorizePublish(f *testing.F) {
	f.Add("/a/x", "t.a", false, "/b", "t.a", false)
	f.Add("/a/x", "t.a", false, "/a/y", "u", false)
	f.Add("/a/", "t.", true, "/a/", "t.", false)
	f.Add("", "", false, "/a/", "t.z", false)
	f.Fuzz(func(t *testing.T, s0, t0 string, h0 bool, s1, t1 string, h1 bool) {
		id := &auth.Identity{Subject: "p", Roles: []auth.Role{auth.RolePublisher}, Scope: auth.Scope{Sources: []string{"/a/"}, Types: []string{"t."}}}
		evs := []*pb.CloudEvent{{Source: s0, Type: t0}, {Source: s1, Type: t1}}
		for i, h := range []bool{h0, h1} {
			if h {
				evs[i].Attributes = map[string]*pb.CloudEventAttributeValue{auth.HopsAttribute: {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 1}}}
			}
		}
		firstBad, field := -1, ""
		for i, ev := range evs {
			switch {
			case !strings.HasPrefix(ev.Source, "/a/"):
				firstBad, field = i, "source"
			case !strings.HasPrefix(ev.Type, "t."):
				firstBad, field = i, "type"
			case ev.Attributes != nil:
				firstBad, field = i, auth.HopsAttribute
			default:
				continue
			}
			break
		}
		d := authorizePublish(id, evs, true)
		if (d == nil) != (firstBad < 0) {
			t.Fatalf("denial %v, first bad event %d", d, firstBad)
		}
		if d == nil {
			return
		}
		if want := fmt.Sprintf("events[%d].%s", firstBad, field); d.path("") != want {
			t.Fatalf("path %q, want %q", d.path(""), want)
		}
		wantStatus := 403
		if field == auth.HopsAttribute {
			wantStatus = 400 // a hop count from a publisher without the right is an invalid event
		}
		if p := d.problem(); p.Status != wantStatus || *p.Errors[0].Index != firstBad || p.Errors[0].Attribute != field {
			t.Fatalf("problem %+v", p)
		}
	})
}
