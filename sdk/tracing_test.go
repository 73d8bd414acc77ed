package sdk

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func traceparentOf(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// A publish sends the caller's trace context in the gRPC metadata: the
// client span's with a tracer provider, else the caller's own span's.
func TestPublishInjectsTraceContext(t *testing.T) {
	f, addr := startFake(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("app").Start(testCtx(t), "app")
	defer parent.End()

	traced := newClient(t, Config{Address: addr, TracerProvider: tp})
	if err := traced.Publish(ctx, testEvent("1", nil)); err != nil {
		t.Fatal(err)
	}
	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		}
	}
	if client == nil || client.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("no client span under the caller's: %v", rec.Ended())
	}
	f.mu.Lock()
	got := f.md.Get("traceparent")
	f.mu.Unlock()
	if len(got) != 1 || got[0] != traceparentOf(client.SpanContext()) {
		t.Fatalf("traceparent %v, want the client span's %s", got, traceparentOf(client.SpanContext()))
	}

	// No provider configured (the global one records nothing): the
	// caller's span context still goes out, in W3C Trace Context.
	plain := newClient(t, Config{Address: addr})
	if err := plain.Publish(ctx, testEvent("2", nil)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got = f.md.Get("traceparent")
	f.mu.Unlock()
	if len(got) != 1 || got[0] != traceparentOf(parent.SpanContext()) {
		t.Fatalf("traceparent %v, want the caller's %s", got, traceparentOf(parent.SpanContext()))
	}
}
