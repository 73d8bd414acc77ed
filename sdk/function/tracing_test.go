package function

import (
	"context"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

const (
	attemptParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	attemptTrace  = "0af7651916cd43dd8448eb211c80319c"
	attemptSpan   = "b7ad6b7169203331"
	eventOrigin   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

// recorder is the global tracer provider of this package's tests, set
// once: a tracer of the global provider stays bound to the first provider
// set, so it cannot be swapped per test. Tests tell their spans apart by
// trigger name.
var recorder = sync.OnceValue(func() *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	return rec
})

func useRecorder(*testing.T) *tracetest.SpanRecorder { return recorder() }

// The handler runs under a "process" span, child of the attempt's span
// whether its context came in the request (a stream) or in the metadata (a
// unary call); a span the handler starts is its child; the span links to
// the event's own origin; replies without a traceparent continue the trace.
func TestHandlerContinuesTheAttemptsTrace(t *testing.T) {
	rec := useRecorder(t)
	var handlerSpan trace.SpanContext
	svc := NewService(func(ctx context.Context, ev event.Event) (Result, error) {
		_, child := otel.Tracer("handler").Start(ctx, "handler work")
		handlerSpan = child.SpanContext()
		child.End()
		reply := newEvent("r-"+ev.ID(), "", nil)
		own := newEvent("own-"+ev.ID(), "", nil)
		own.SetExtension("traceparent", eventOrigin)
		return Reply(reply, own), nil
	})
	req := func() *functionv1.InvokeRequest {
		ev := pbEvent("e-1")
		ev.Attributes["traceparent"] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: eventOrigin}}
		return &functionv1.InvokeRequest{Event: ev, Attempt: 2, Trigger: "orders"}
	}
	for name, call := range map[string]func() (*functionv1.InvokeResponse, error){
		"request field": func() (*functionv1.InvokeResponse, error) {
			r := req()
			r.TraceContext = map[string]string{"traceparent": attemptParent}
			return svc.Invoke(context.Background(), r)
		},
		"unary metadata": func() (*functionv1.InvokeResponse, error) {
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", attemptParent))
			return svc.Invoke(ctx, req())
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(rec.Ended())
			resp, err := call()
			require.NoError(t, err)
			ended := rec.Ended()[before:]
			var process sdktrace.ReadOnlySpan
			for _, s := range ended {
				if s.Name() == "process orders" {
					process = s
				}
			}
			require.NotNil(t, process)
			require.Equal(t, trace.SpanKindConsumer, process.SpanKind())
			require.Equal(t, attemptTrace, process.SpanContext().TraceID().String())
			require.Equal(t, attemptSpan, process.Parent().SpanID().String())
			require.Equal(t, process.SpanContext().TraceID(), handlerSpan.TraceID())
			var handler sdktrace.ReadOnlySpan
			for _, s := range ended {
				if s.SpanContext().SpanID() == handlerSpan.SpanID() {
					handler = s
				}
			}
			require.NotNil(t, handler)
			require.Equal(t, process.SpanContext().SpanID(), handler.Parent().SpanID(), "the handler's span is a child of process")
			require.Len(t, process.Links(), 1)
			require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", process.Links()[0].SpanContext.TraceID().String())

			require.Len(t, resp.GetReplies(), 2)
			var c propagation.MapCarrier = map[string]string{}
			propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), process.SpanContext()), c)
			require.Equal(t, c["traceparent"], resp.GetReplies()[0].GetAttributes()["traceparent"].GetCeString(), "a reply continues the trace")
			require.Equal(t, eventOrigin, resp.GetReplies()[1].GetAttributes()["traceparent"].GetCeString(), "a reply's own traceparent is kept")
		})
	}
}

// Without a provider set nothing is recorded, and the handler's context
// still carries the attempt's span context, so its spans would join.
func TestHandlerContextCarriesTheAttemptWithoutProvider(t *testing.T) {
	var got trace.SpanContext
	svc := &service{h: func(ctx context.Context, ev event.Event) (Result, error) {
		got = trace.SpanContextFromContext(ctx)
		return Result{}, nil
	}, tr: tracing{tracer: tracenoop.NewTracerProvider().Tracer(""), prop: propagation.TraceContext{}}}
	_, err := svc.Invoke(context.Background(), &functionv1.InvokeRequest{Event: pbEvent("e-1"), Trigger: "orders", TraceContext: map[string]string{"traceparent": attemptParent}})
	require.NoError(t, err)
	require.Equal(t, attemptTrace, got.TraceID().String())
	require.Equal(t, attemptSpan, got.SpanID().String())
	require.True(t, got.IsRemote())
}

// On an InvokeStream, each call continues its own attempt's trace.
func TestStreamCallsContinueTheirTraces(t *testing.T) {
	rec := useRecorder(t)
	c := openStream(t, func(ctx context.Context, ev event.Event) (Result, error) { return Result{}, nil })
	for i, tp := range []string{attemptParent, "00-0af7651916cd43dd8448eb211c80319c-00000000000000aa-01"} {
		c.invoke(t, uint64(i+1), &functionv1.InvokeRequest{Event: pbEvent("e"), Trigger: "stream-orders", TraceContext: map[string]string{"traceparent": tp}})
	}
	c.recv(t)
	c.recv(t)
	parents := map[string]bool{}
	for _, s := range rec.Ended() {
		if s.Name() == "process stream-orders" {
			parents[s.Parent().SpanID().String()] = true
		}
	}
	require.Equal(t, map[string]bool{attemptSpan: true, "00000000000000aa": true}, parents)
}
