package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/bench"
	"github.com/switchyard-io/switchyard/cli"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// envServe makes this test binary act as the switchyard binary: the
// benchmark starts its child servers with os.Executable() and "serve …".
const envServe = "SWITCHYARD_BENCH_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		root := cli.NewRoot()
		root.SetArgs(os.Args[1:])
		if err := root.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "switchyard:", err)
			os.Exit(cli.ExitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSecureSmoke runs single and secure briefly with child servers (this
// binary, serving) on the real Redis: the server with TLS and
// authentication on delivers what is published over gRPC and HTTPS with
// an API key, its CPU is measured, the report compares it with plaintext,
// and every key of both servers is gone afterwards. It checks the report's
// shape, never its speed.
func TestSecureSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Redis; skipped with -short")
	}
	be := testenv.Real(t)
	t.Setenv(envServe, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	rep, err := bench.Run(ctx, bench.Options{
		RedisURL:   be.URL,
		Executable: os.Args[0],
		// Few HTTP clients, and time for their TLS handshakes with a
		// server that may be built with -race on a loaded machine.
		HTTPClients: 4,
		Duration:    500 * time.Millisecond,
		Warmup:      500 * time.Millisecond,
		Scenarios:   []string{bench.Single, bench.Secure},
		Out:         &out,
		Log:         &log,
	})
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("errors: %v\nout:\n%s\nlog:\n%s", rep.Errors, out.String(), log.String())
	}
	s := rep.Scenarios.Secure
	if s == nil || s.Delivered <= 0 || s.Accepted <= 0 {
		t.Fatalf("secure: nothing delivered: %+v\nlog:\n%s", s, log.String())
	}
	if s.HTTP == nil || s.HTTP.Accepted <= 0 || s.HTTP.Errors > 0 {
		t.Fatalf("secure/http: %+v", s.HTTP)
	}
	if s.Usage.ServerCPUS <= 0 {
		t.Errorf("secure: the TLS server's CPU was not measured: %+v", s.Usage)
	}
	for _, r := range []string{"secure_vs_single", "secure_server_cpu_vs_single", "secure_http_vs_single_http"} {
		if rep.Ratios[r] <= 0 {
			t.Errorf("ratio %s missing: %v", r, rep.Ratios)
		}
	}
	if !bytes.Contains(out.Bytes(), []byte("server CPU µs/event: gRPC plaintext")) {
		t.Errorf("no comparison line:\n%s", out.String())
	}
	if !bytes.Contains(log.Bytes(), []byte("(TLS, authentication)")) {
		t.Errorf("the secure server did not authenticate:\n%s", log.String())
	}
	if rep.Config.ServerMode != "child" {
		t.Errorf("server mode %q", rep.Config.ServerMode)
	}
	keys, err := be.Client.Keys(ctx, rep.Config.KeyPrefix+"*").Result()
	if err != nil || len(keys) > 0 {
		t.Errorf("keys left under %s: %v %v", rep.Config.KeyPrefix, keys, err)
	}
}
