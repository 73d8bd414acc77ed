package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/otlpsink"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// TestTracingEndToEnd runs Switchyard with tracing exported over OTLP/gRPC
// to a receiver in the test, and checks that what it receives forms one
// trace per publish with the expected parent/child links:
//
//   - gRPC: a publish from the SDK (under the test's span), through
//     Switchyard, to a function built with sdk/function whose first attempt
//     fails and whose handler starts a span of its own on the retry;
//   - HTTP: a POST /events with a traceparent header, to an HTTP target
//     whose first answer is a 503.
//
// The test process exports its own spans (publisher, function, HTTP
// target) to the same receiver, as separate services would.
func TestTracingEndToEnd(t *testing.T) {
	sink, err := otlpsink.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(sink.GRPCAddr()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(semconv.ServiceName("e2e"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	// sdk/function records its spans with the global provider.
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	// The function: the first attempt of each event fails, the retry
	// starts a span of its own.
	var fnCalls atomic.Int64
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fctx, fstop := context.WithCancel(ctx)
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		_ = function.ServeListener(fctx, lis, func(ctx context.Context, ev cloudevents.Event) (function.Result, error) {
			fnCalls.Add(1)
			info, _ := function.FromContext(ctx)
			if info.Attempt == 1 {
				return function.Result{}, status.Error(codes.Unavailable, "warming up")
			}
			_, span := otel.Tracer("e2e-function").Start(ctx, "function work")
			span.End()
			return function.Result{}, nil
		})
	}()
	defer func() { fstop(); <-fdone }()

	// The HTTP target: 503 first, then 200, instrumented with otelhttp.
	var httpCalls atomic.Int64
	target := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpCalls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}), "http target", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(op string, _ *http.Request) string { return op })))
	defer target.Close()

	p := startServeEnv(t, []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + sink.GRPCAddr(),
		"OTEL_BSP_SCHEDULE_DELAY=50",
		"OTEL_SERVICE_NAME=switchyard-e2e",
	})

	client, err := sdk.New(sdk.Config{Address: p.GRPC, Timeout: 30 * time.Second, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	backoff := trigger.Delivery{MaxAttempts: 5, InitialBackoff: trigger.Duration{Duration: 20 * time.Millisecond}, MaxBackoff: trigger.Duration{Duration: 50 * time.Millisecond}}
	for name, tgt := range map[string]trigger.Target{"traced-grpc": {GRPC: lis.Addr().String()}, "traced-http": {URL: target.URL + "/hook"}} {
		spec := trigger.Spec{Name: name, Filter: filter.Spec{Attributes: map[string]string{"type": "e2e." + name}}, Target: tgt, Delivery: backoff}
		if _, err := client.ApplyTrigger(ctx, trigger.ToProto(spec)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("grpc", func(t *testing.T) {
		pctx, root := tp.Tracer("e2e-publisher").Start(ctx, "publisher")
		ev := cloudevents.NewEvent()
		ev.SetID("g-1")
		ev.SetSource("/e2e")
		ev.SetType("e2e.traced-grpc")
		if err := client.Publish(pctx, ev); err != nil {
			t.Fatal(err)
		}
		root.End()
		traceID := root.SpanContext().TraceID().String()
		// publisher, client, server, publish, 2 × (deliver, process), function work
		spans := waitTree(t, sink, traceID, 9, p)
		tree := newSpanTree(spans)
		pub := tree.one(t, "publisher", "")
		cl := tree.one(t, "switchyard.v1.EventService/Publish", pub.SpanID, tracepb.Span_SPAN_KIND_CLIENT)
		srv := tree.one(t, "switchyard.v1.EventService/Publish", cl.SpanID, tracepb.Span_SPAN_KIND_SERVER)
		if srv.Service != "switchyard-e2e" {
			t.Errorf("server span from %q", srv.Service)
		}
		publish := tree.one(t, "publish", srv.SpanID, tracepb.Span_SPAN_KIND_PRODUCER)
		attempts := tree.children(publish.SpanID, "deliver traced-grpc")
		if len(attempts) != 2 {
			t.Fatalf("%d attempt spans under publish, want 2\n%s", len(attempts), tree)
		}
		for _, a := range attempts {
			n := a.Attributes["switchyard.delivery.attempt"]
			process := tree.one(t, "process traced-grpc", a.SpanID, tracepb.Span_SPAN_KIND_CONSUMER)
			switch n {
			case int64(1):
				wantAttrs(t, a, map[string]any{"switchyard.delivery.outcome": "retry", "rpc.response.status_code": "UNAVAILABLE",
					"messaging.destination.name": "traced-grpc", "cloudevents.event_id": "g-1", "cloudevents.event_source": "/e2e"})
				if process.Status != tracepb.Status_STATUS_CODE_ERROR {
					t.Errorf("the failed attempt's process span: status %v", process.Status)
				}
			case int64(2):
				wantAttrs(t, a, map[string]any{"switchyard.delivery.outcome": "ack", "rpc.response.status_code": "OK"})
				tree.one(t, "function work", process.SpanID)
			default:
				t.Fatalf("attempt attribute %v", n)
			}
			if _, ok := a.Attributes["switchyard.queue.wait"]; !ok {
				t.Errorf("attempt %v has no queue wait", n)
			}
		}
	})

	t.Run("http", func(t *testing.T) {
		const traceID = "5e1ec7ed0000000000000000000000aa"
		body := `{"specversion":"1.0","id":"h-1","source":"/e2e","type":"e2e.traced-http","data":{"n":1}}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.HTTP+"/events", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("traceparent", "00-"+traceID+"-00000000000000bb-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(answer), `"routed":1`) {
			t.Fatalf("status %d: %s", resp.StatusCode, answer)
		}
		// server, publish, 2 × (deliver, target)
		spans := waitTree(t, sink, traceID, 6, p)
		tree := newSpanTree(spans)
		srv := tree.one(t, "POST /events", "00000000000000bb", tracepb.Span_SPAN_KIND_SERVER)
		publish := tree.one(t, "publish", srv.SpanID, tracepb.Span_SPAN_KIND_PRODUCER)
		attempts := tree.children(publish.SpanID, "deliver traced-http")
		if len(attempts) != 2 {
			t.Fatalf("%d attempt spans under publish, want 2\n%s", len(attempts), tree)
		}
		for _, a := range attempts {
			got := tree.one(t, "http target", a.SpanID, tracepb.Span_SPAN_KIND_SERVER)
			switch a.Attributes["switchyard.delivery.attempt"] {
			case int64(1):
				wantAttrs(t, a, map[string]any{"switchyard.delivery.outcome": "retry", "http.response.status_code": int64(503), "cloudevents.event_id": "h-1"})
				wantAttrs(t, got, map[string]any{"http.response.status_code": int64(503)})
			case int64(2):
				wantAttrs(t, a, map[string]any{"switchyard.delivery.outcome": "ack", "http.response.status_code": int64(200)})
			}
		}
	})
}

// waitTree waits until the trace holds n spans and returns them.
func waitTree(t *testing.T, sink *otlpsink.Sink, traceID string, n int, p *proc) []otlpsink.Span {
	t.Helper()
	var spans []otlpsink.Span
	testenv.Eventually(t, 30*time.Second, func() bool {
		spans = spans[:0]
		for _, s := range sink.Spans() {
			if s.TraceID == traceID {
				spans = append(spans, s)
			}
		}
		return len(spans) >= n
	}, "%d spans in trace %s; got:\n%s\nswitchyard logs:\n%s", n, traceID, newSpanTree(spans), p.Logs())
	return spans
}

// spanTree indexes one trace's spans.
type spanTree struct{ spans []otlpsink.Span }

func newSpanTree(spans []otlpsink.Span) spanTree { return spanTree{spans} }

// children returns the spans named name whose parent is parent.
func (tr spanTree) children(parent, name string) []otlpsink.Span {
	var out []otlpsink.Span
	for _, s := range tr.spans {
		if s.ParentSpanID == parent && s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only span named name under parent ("" for the root), of
// the given kind when one is given.
func (tr spanTree) one(t *testing.T, name, parent string, kind ...tracepb.Span_SpanKind) otlpsink.Span {
	t.Helper()
	got := tr.children(parent, name)
	if len(got) != 1 {
		t.Fatalf("%d spans %q under %q, want 1\n%s", len(got), name, parent, tr)
	}
	if len(kind) > 0 && got[0].Kind != kind[0] {
		t.Fatalf("span %q: kind %v, want %v", name, got[0].Kind, kind[0])
	}
	return got[0]
}

func (tr spanTree) String() string {
	lines := make([]string, 0, len(tr.spans))
	for _, s := range tr.spans {
		lines = append(lines, fmt.Sprintf("  %s %s (parent %s, %s, %s)", s.SpanID, s.Name, s.ParentSpanID, s.Kind, s.Service))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func wantAttrs(t *testing.T, s otlpsink.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if s.Attributes[k] != v {
			t.Errorf("span %q: %s = %v (%T), want %v", s.Name, k, s.Attributes[k], s.Attributes[k], v)
		}
	}
}
