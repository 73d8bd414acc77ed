package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/server"
)

// TestRunSmoke runs the benchmark briefly against an in-process server on
// the real Redis. It checks the report's shape, never its speed.
func TestRunSmoke(t *testing.T) {
	be, rep, out, log := smokeRun(t, Options{Scenarios: []string{Single, RawRedis}})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	var got Report
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, out)
	}
	if len(got.Errors) > 0 {
		t.Errorf("errors: %v\nlog:\n%s", got.Errors, log)
	}
	s := got.Scenarios
	if s.Single == nil || s.Single.Delivered <= 0 || s.Single.Accepted <= 0 {
		t.Errorf("single: nothing delivered: %+v", s.Single)
	}
	if s.Single != nil && (s.Single.HTTP == nil || s.Single.HTTP.Accepted <= 0) {
		t.Errorf("single/http: nothing accepted: %+v", s.Single.HTTP)
	}
	if s.RawRedis == nil || s.RawRedis.Acked <= 0 {
		t.Errorf("raw-redis: nothing acked: %+v", s.RawRedis)
	}
	if _, ok := got.Ratios["single_vs_raw_redis"]; !ok {
		t.Errorf("ratios: %v", got.Ratios)
	}
	if got.Config.ServerMode != "external" || rep == nil {
		t.Errorf("server mode %q", got.Config.ServerMode)
	}
	// The benchmark's own keys (raw-redis stream) are gone.
	if keys, err := be.Client.Keys(t.Context(), rep.Config.KeyPrefix+":*").Result(); err != nil || len(keys) > 0 {
		t.Errorf("keys left under %s: %v %v", rep.Config.KeyPrefix, keys, err)
	}
}

// The triggers10k scenario, shrunk to a few triggers, prints the size of
// /metrics and how long its scrape took, and reports them.
func TestTriggersScenarioScrapesMetrics(t *testing.T) {
	_, rep, out, log := smokeRun(t, Options{Scenarios: []string{Triggers10k}, Triggers: 20})
	r := rep.Scenarios.Triggers10k
	if r == nil || r.MetricsBytes <= 0 || r.MetricsScrapeS <= 0 {
		t.Fatalf("no /metrics figures: %+v\nlog:\n%s", r, log)
	}
	if !strings.Contains(out, "GET /metrics with 20 triggers: ") {
		t.Errorf("not printed:\n%s", out)
	}
}

// The latency scenario measures the transports' floor at each rate beside
// the saturated baselines of the same run, and reports the ratios.
func TestLatencyScenarioMeasuresTheFloor(t *testing.T) {
	_, rep, out, log := smokeRun(t, Options{Scenarios: []string{RawGRPC, RawRedis, Latency}, LatencyRates: []int{200}, Duration: 300 * time.Millisecond})
	if len(rep.Errors) > 0 {
		t.Fatalf("errors: %v\nlog:\n%s", rep.Errors, log)
	}
	if len(rep.Scenarios.Latency) != 1 || rep.Scenarios.Latency[0].Floor == nil {
		t.Fatalf("no floor in the latency result: %+v", rep.Scenarios.Latency)
	}
	f := rep.Scenarios.Latency[0].Floor
	if f.RatePerS != 200 || f.GRPC.Calls <= 0 || f.GRPC.Usage.BenchUSPerOp <= 0 || f.GRPC.Errors != 0 {
		t.Errorf("gRPC floor: %+v", f.GRPC)
	}
	if f.Redis.Acked <= 0 || f.Redis.Usage.RedisCallsPerOp <= 0 {
		t.Errorf("Redis floor: %+v", f.Redis)
	}
	if f.GRPCVsSaturated <= 0 || f.RedisCallsVsSaturated <= 0 {
		t.Errorf("ratios to the saturated baselines missing: %+v", f)
	}
	if !strings.Contains(out, "floor: raw gRPC unary") || !strings.Contains(out, "floor: raw Redis") {
		t.Errorf("floor lines not printed:\n%s", out)
	}
}

// smokeServer serves an in-process server on the real Redis for the test.
func smokeServer(t *testing.T) (testenv.Backend, *server.Server) {
	t.Helper()
	be := testenv.Real(t)
	srv, err := server.New(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: be.URL,
		Router: router.Config{Prefix: be.Prefix},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return be, srv
}

// smokeRun runs the benchmark o (briefly, unless o says how long) against
// an in-process server on the real Redis and returns the report and what
// it printed; it fails the test when Run does.
func smokeRun(t *testing.T, o Options) (be testenv.Backend, rep *Report, out, log string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real Redis; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	be, srv := smokeServer(t)
	var ob, lb bytes.Buffer
	o.RedisURL, o.Server, o.ServerHTTP, o.Out, o.Log = be.URL, srv.GRPCAddr(), srv.HTTPAddr(), &ob, &lb
	if o.Duration == 0 {
		o.Duration = 200 * time.Millisecond
	}
	if o.Warmup == 0 {
		o.Warmup = 100 * time.Millisecond
	}
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, lb.String())
	}
	return be, rep, ob.String(), lb.String()
}
