package connectortest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// RouterSink starts a Switchyard router on the real Redis (private key
// prefix) with one catch-all trigger, so every event published through the
// returned sink is stored for delivery, as in production. Benchmarks use it
// to measure a connector's sustained events/s into Switchyard.
func RouterSink(tb testing.TB) connectors.Sink {
	tb.Helper()
	b := testenv.Real(tb)
	ctx := context.Background()
	r, err := router.New(router.Config{Prefix: b.Prefix, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, b.Client, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	// The target never answers: events stay queued, which is what a
	// throughput measurement of the ingest side wants.
	spec := trigger.Spec{Name: "bench-all", Target: trigger.Target{GRPC: "127.0.0.1:1"},
		Delivery: trigger.Delivery{MaxQueue: trigger.MaxMaxQueue, MaxConcurrency: 1, Timeout: trigger.Duration{Duration: time.Millisecond}}}
	t, err := trigger.Compile(spec)
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := r.PutTrigger(ctx, trigger.ToProto(t.Spec), 0, 0); err != nil {
		tb.Fatal(err)
	}
	return router.Sink{R: r}
}
