package function

import (
	"context"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// Tracing: the handler runs under a "process <trigger>" span (CONSUMER), a
// child of Switchyard's span for the attempt, whose context arrives in
// InvokeRequest.trace_context (or, on a unary call from an older
// Switchyard, in the gRPC metadata). The span is made with OpenTelemetry's
// global tracer provider and propagator (otel.SetTracerProvider,
// otel.SetTextMapPropagator): until the function sets them it records
// nothing, but the handler's context still carries the attempt's trace
// context, so spans the handler starts with any provider join the trace.
// W3C Trace Context is read whatever the global propagator. The span links
// to the event's own traceparent (where the event was created) when that
// is in another trace, and reply events that carry no traceparent get the
// span's, so they continue the trace of the event they answer.

const tracerName = "github.com/switchyard-io/switchyard/sdk/function"

// tracing reads the attempt's trace context and makes the handler's span.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func newTracing() tracing {
	// The globals delegate to whatever the function sets later.
	return tracing{
		tracer: otel.Tracer(tracerName),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, otel.GetTextMapPropagator()),
	}
}

// incoming reads a unary call's gRPC metadata.
type incoming struct{ ctx context.Context }

func (c incoming) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (incoming) Set(string, string) {}
func (c incoming) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// start returns ctx under the span of the invocation req.
func (t tracing) start(ctx context.Context, req *functionv1.InvokeRequest) (context.Context, trace.Span) {
	var parent context.Context
	if tc := req.GetTraceContext(); len(tc) > 0 {
		parent = t.prop.Extract(ctx, propagation.MapCarrier(tc))
	} else {
		parent = t.prop.Extract(ctx, incoming{ctx})
	}
	ev := req.GetEvent()
	ctx, span := t.tracer.Start(parent, "process "+req.GetTrigger(), trace.WithSpanKind(trace.SpanKindConsumer))
	if !span.IsRecording() {
		return ctx, span
	}
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKey.String("switchyard"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(req.GetTrigger()),
		semconv.MessagingMessageID(ev.GetId()),
		semconv.CloudEventsEventID(ev.GetId()),
		semconv.CloudEventsEventSource(ev.GetSource()),
		semconv.CloudEventsEventType(ev.GetType()),
		attribute.Int("switchyard.delivery.attempt", int(req.GetAttempt())),
	}
	if s := ev.GetAttributes()["subject"].GetCeString(); s != "" {
		attrs = append(attrs, semconv.CloudEventsEventSubject(s))
	}
	span.SetAttributes(attrs...)
	if tp := ev.GetAttributes()["traceparent"].GetCeString(); tp != "" {
		origin := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": tp, "tracestate": ev.GetAttributes()["tracestate"].GetCeString()}))
		if origin.IsValid() && origin.TraceID() != span.SpanContext().TraceID() {
			span.AddLink(trace.Link{SpanContext: origin})
		}
	}
	return ctx, span
}

// end records the answer on the span and ends it; replies without a
// traceparent get the span's context.
func (t tracing) end(ctx context.Context, span trace.Span, resp *functionv1.InvokeResponse, st *status.Status) {
	defer span.End()
	switch {
	case st != nil:
		span.SetStatus(codes.Error, st.Message())
	case resp.GetOutcome() == functionv1.Outcome_OUTCOME_RETRY || resp.GetOutcome() == functionv1.Outcome_OUTCOME_DEAD:
		span.SetStatus(codes.Error, resp.GetReason())
	}
	if len(resp.GetReplies()) == 0 || !span.SpanContext().IsValid() {
		return
	}
	fields := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, fields)
	for _, r := range resp.GetReplies() {
		if _, ok := r.GetAttributes()["traceparent"]; ok {
			continue
		}
		if r.Attributes == nil {
			r.Attributes = map[string]*pb.CloudEventAttributeValue{}
		}
		for k, v := range fields {
			r.Attributes[k] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: v}}
		}
	}
}
