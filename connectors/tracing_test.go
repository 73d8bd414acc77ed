package connectors_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-io/switchyard/connectors"
)

// spanSink records the span each publish ran under.
type spanSink struct {
	mu    sync.Mutex
	spans []trace.SpanContext
	n     []int
}

func (s *spanSink) Publish(ctx context.Context, evs []*pb.CloudEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spans = append(s.spans, trace.SpanContextFromContext(ctx))
	s.n = append(s.n, len(evs))
	return nil
}

// With a tracer, each batch is published under a "receive <source>" span
// that counts its messages and ends once they are acknowledged.
func TestRunnerTracesEachBatch(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	src := &fakeSource{queue: []*pb.CloudEvent{ev("a"), ev("b"), ev("c")}}
	sink := &spanSink{}
	reg := connectors.NewRegistry()
	if err := reg.Register(connectors.Spec{Kind: "fake", Summary: "fake", New: func(connectors.Env, connectors.Config) (connectors.Source, error) { return src, nil }}); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRunner(connectors.RunnerConfig{BatchWait: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tracer: tp.Tracer("test")},
		reg, sink, func(string) connectors.Env { return connectors.Env{} }, []connectors.SourceConfig{{Name: "f", Kind: "fake"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	waitFor(t, func() bool { src.mu.Lock(); defer src.mu.Unlock(); return len(src.acked) == 3 })
	waitFor(t, func() bool { return len(rec.Ended()) > 0 })

	sink.mu.Lock()
	defer sink.mu.Unlock()
	ended := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		ended[s.SpanContext().SpanID()] = s
	}
	total := 0
	for i, sc := range sink.spans {
		s, ok := ended[sc.SpanID()]
		if !ok {
			t.Fatalf("publish %d ran under no ended span", i)
		}
		if s.Name() != "receive f" || s.SpanKind() != trace.SpanKindClient {
			t.Fatalf("span %q kind %v", s.Name(), s.SpanKind())
		}
		got := map[string]any{}
		for _, kv := range s.Attributes() {
			got[string(kv.Key)] = kv.Value.AsInterface()
		}
		if got["messaging.operation.type"] != "receive" || got["switchyard.source.name"] != "f" || got["switchyard.source.kind"] != "fake" ||
			got["messaging.batch.message_count"] != int64(sink.n[i]) {
			t.Fatalf("attributes %v (batch of %d)", got, sink.n[i])
		}
		total += sink.n[i]
	}
	if total != 3 {
		t.Fatalf("published %d events under spans, want 3", total)
	}
}
