package router

import (
	"context"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// Tracing: where the spans start and end, and how the trace survives the
// queue.
//
//   - publish (PRODUCER, "publish"): one per Router.Publish call, a child of
//     the caller's span (the HTTP or gRPC server span of the ingest, a
//     connector's batch read, an attempt whose function replied). It counts
//     the events and the deliveries queued, and names the triggers matched.
//     Router.PublishOnce (a schedule's tick, under the runner's batch span)
//     starts the same span, which also says whether this call published
//     the tick or found it published by another instance.
//   - The trace context of each event is stored with it, in the CloudEvents
//     distributed tracing extension (traceparent, tracestate attributes).
//     An event that arrives with a traceparent keeps it untouched: the
//     extension records where the event was created, and an intermediary
//     must not rewrite it; the publish span links to it when it belongs to
//     another trace. An event without one gets the publish span's. Stored
//     with the event, the context survives the queue, retries, restarts and
//     dead-letter replay.
//   - deliver (CLIENT, "deliver <trigger>"): one per attempt, started when
//     the attempt starts (after the claim) as a child of the event's stored
//     context, and ended once its outcome is known (replies published). Its
//     context goes to the target (see delivery.Attempt.Trace), so the
//     function's spans are its children; the queue wait is an attribute.
//
// Off (Config.Tracing.Provider nil), none of this runs: the hot path pays
// one nil check per attempt and per publish.

// Tracing configures OpenTelemetry tracing. The zero value traces nothing.
type Tracing struct {
	// Provider creates the router's spans; nil turns tracing off.
	Provider trace.TracerProvider
	// Propagator writes the attempts' trace context for targets (W3C Trace
	// Context when nil). The context stored in events is always W3C Trace
	// Context, the format of the CloudEvents extension.
	Propagator propagation.TextMapPropagator
}

// tracerName is the instrumentation scope of the router's spans.
const tracerName = "github.com/switchyard-io/switchyard/router"

// Attribute keys of Switchyard's own (no semantic convention covers them).
const (
	attrRouted     = attribute.Key("switchyard.publish.routed")
	attrTriggers   = attribute.Key("switchyard.publish.triggers")
	attrAttempt    = attribute.Key("switchyard.delivery.attempt")
	attrRound      = attribute.Key("switchyard.delivery.round")
	attrOutcome    = attribute.Key("switchyard.delivery.outcome")
	attrCode       = attribute.Key("switchyard.delivery.code")
	attrQueueWait  = attribute.Key("switchyard.queue.wait")
	attrReplies    = attribute.Key("switchyard.delivery.replies")
	attrTargetKind = attribute.Key("switchyard.target.kind")
	attrOnceKey    = attribute.Key("switchyard.publish.once.key")
	attrOnceSeq    = attribute.Key("switchyard.publish.once.seq")
	attrOnceDone   = attribute.Key("switchyard.publish.once.published")
)

// maxSpanNames bounds the trigger names on a publish span and the links to
// the events' own traces: a batch of a thousand events must not make a span
// of a thousand links.
const maxSpanNames = 16

// messagingSystem is messaging.system of every span.
var messagingSystem = semconv.MessagingSystemKey.String("switchyard")

// tracer is the router's tracing when on.
type tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

func newTracer(c Tracing) *tracer {
	if c.Provider == nil {
		return nil
	}
	prop := c.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return &tracer{t: c.Provider.Tracer(tracerName), prop: prop}
}

// traceStamp is the trace context given to the events of a publish that
// carry none: the publish span's, as the distributed tracing extension
// writes it.
type traceStamp struct {
	parent, state string
}

// w3cFields captures what propagation.TraceContext writes.
type w3cFields struct{ traceparent, tracestate string }

func (c *w3cFields) Get(key string) string {
	switch key {
	case "traceparent":
		return c.traceparent
	case "tracestate":
		return c.tracestate
	}
	return ""
}

func (c *w3cFields) Set(key, value string) {
	switch key {
	case "traceparent":
		c.traceparent = value
	case "tracestate":
		c.tracestate = value
	}
}

func (c *w3cFields) Keys() []string { return []string{"traceparent", "tracestate"} }

// startPublish starts the publish span of a call that matched res, returning
// the stamp for its events without a trace context. The caller ends the span.
func (tr *tracer) startPublish(ctx context.Context, events []*pb.CloudEvent, res PublishResult) (trace.Span, traceStamp) {
	_, span := tr.t.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))
	var c w3cFields
	propagation.TraceContext{}.Inject(trace.ContextWithSpan(ctx, span), &c)
	if !span.IsRecording() {
		return span, traceStamp{c.traceparent, c.tracestate}
	}
	attrs := []attribute.KeyValue{
		messagingSystem,
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"),
		semconv.MessagingBatchMessageCount(len(events)),
		attrRouted.Int(res.Routed),
	}
	if len(events) == 1 {
		ev := events[0]
		attrs = append(attrs, eventAttributes(ev.GetId(), ev.GetSource(), ev.GetType(), stringAttr(ev, "subject"))...)
	}
	var names []string
	for _, ts := range res.Triggers {
		for _, t := range ts {
			if len(names) < maxSpanNames && !slices.Contains(names, t) {
				names = append(names, t)
			}
		}
	}
	if len(names) > 0 {
		attrs = append(attrs, attrTriggers.StringSlice(names))
	}
	span.SetAttributes(attrs...)
	// Events created in another trace: link the publish to them.
	own := span.SpanContext().TraceID()
	var linked []trace.TraceID
	for _, ev := range events {
		tp, ok := ev.GetAttributes()["traceparent"]
		if !ok || len(linked) >= maxSpanNames {
			continue
		}
		ec := w3cFields{traceparent: tp.GetCeString(), tracestate: stringAttr(ev, "tracestate")}
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), &ec))
		if sc.IsValid() && sc.TraceID() != own && !slices.Contains(linked, sc.TraceID()) {
			linked = append(linked, sc.TraceID())
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return span, traceStamp{c.traceparent, c.tracestate}
}

// onceAttributes describe a publish made at most once (PublishOnce): its
// key and sequence number, whether this call published them, and the
// deliveries it queued (none when another call had published seq).
func onceAttributes(key string, seq int64, published bool, routed int) []attribute.KeyValue {
	if !published {
		routed = 0
	}
	return []attribute.KeyValue{attrOnceKey.String(key), attrOnceSeq.Int64(seq), attrOnceDone.Bool(published), attrRouted.Int(routed)}
}

// endSpan ends a span, recording err when not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(otelcodes.Error, err.Error())
	}
	span.End()
}

// stringAttr returns a string attribute of ev, "" when absent or of another
// type.
func stringAttr(ev *pb.CloudEvent, name string) string {
	return ev.GetAttributes()[name].GetCeString()
}

// Field numbers of io.cloudevents.v1.CloudEvent and its attribute value.
const (
	ceID         protowire.Number = 1
	ceSource     protowire.Number = 2
	ceType       protowire.Number = 4
	ceAttributes protowire.Number = 5
	mapKey       protowire.Number = 1
	mapValue     protowire.Number = 2
	attrCeString protowire.Number = 3
)

// stamp returns b, the encoding of ev, with the stamp's trace context
// added to its attributes when ev has no traceparent. A map entry appended
// to the encoding is the same as one set before marshalling (decoders merge
// map entries, a later one winning), so the event is neither copied nor
// modified.
func (s traceStamp) stamp(ev *pb.CloudEvent, b []byte) []byte {
	if s.parent == "" {
		return b
	}
	if _, ok := ev.GetAttributes()["traceparent"]; ok {
		return b
	}
	b = appendStringAttr(b, "traceparent", s.parent)
	if s.state != "" {
		if _, ok := ev.GetAttributes()["tracestate"]; !ok {
			b = appendStringAttr(b, "tracestate", s.state)
		}
	}
	return b
}

// appendStringAttr appends an attributes entry name = ce_string value.
func appendStringAttr(b []byte, name, value string) []byte {
	val := protowire.SizeTag(attrCeString) + protowire.SizeBytes(len(value))
	entry := protowire.SizeTag(mapKey) + protowire.SizeBytes(len(name)) + protowire.SizeTag(mapValue) + protowire.SizeBytes(val)
	b = protowire.AppendTag(b, ceAttributes, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entry))
	b = protowire.AppendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, mapValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(val))
	b = protowire.AppendTag(b, attrCeString, protowire.BytesType)
	return protowire.AppendString(b, value)
}

// storedFields are what an attempt span needs of a stored event.
type storedFields struct {
	id, source, typ, subject string
	w3cFields
}

// scanStored reads the fields an attempt span needs from a stored event
// without decoding it (a gRPC attempt sends the stored bytes as they are).
// The event was checked by delivery.ScanEvent; whatever does not parse is
// left empty. As proto.Unmarshal does, the last occurrence of a field wins.
func scanStored(b []byte) storedFields {
	var f storedFields
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return f
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return f
		}
		b = b[n:]
		switch num {
		case ceID:
			f.id = string(v)
		case ceSource:
			f.source = string(v)
		case ceType:
			f.typ = string(v)
		case ceAttributes:
			key, val := mapEntry(v)
			switch key {
			case "subject":
				f.subject = val
			case "traceparent":
				f.traceparent = val
			case "tracestate":
				f.tracestate = val
			}
		}
	}
	return f
}

// mapEntry decodes an attributes entry the way proto.Unmarshal reads it:
// the last key wins, value messages merge (the last variant set wins) and
// value is the ce_string, "" for another variant.
func mapEntry(b []byte) (key, value string) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return key, value
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return key, value
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return key, value
		}
		b = b[n:]
		switch num {
		case mapKey:
			key = string(v)
		case mapValue:
			value = attrString(v, value)
		}
	}
	return key, value
}

// attrString reads a CloudEventAttributeValue merged over one whose string
// form was prev: each variant of its oneof (fields 1 to 7) replaces the
// value, which is a string only for ce_string.
func attrString(b []byte, prev string) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return prev
		}
		b = b[n:]
		var s []byte
		if typ == protowire.BytesType {
			s, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return prev
		}
		b = b[n:]
		switch {
		case num == attrCeString && typ == protowire.BytesType:
			prev = string(s)
		case num >= 1 && num <= 7 && wireTypeOf(num) == typ:
			prev = ""
		}
	}
	return prev
}

// wireTypeOf is the wire type of CloudEventAttributeValue's oneof field num
// (a field with another wire type is an unknown field to the decoder).
func wireTypeOf(num protowire.Number) protowire.Type {
	switch num {
	case 1, 2: // ce_boolean, ce_integer
		return protowire.VarintType
	}
	return protowire.BytesType
}

func eventAttributes(id, source, typ, subject string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.MessagingMessageID(id),
		semconv.CloudEventsEventID(id),
		semconv.CloudEventsEventSource(source),
		semconv.CloudEventsEventType(typ),
	}
	if subject != "" {
		attrs = append(attrs, semconv.CloudEventsEventSubject(subject))
	}
	return attrs
}

// startAttempt starts the span of an attempt about to be made, a child of
// the event's stored trace context, and puts its context in a.Trace for the
// target. The returned context carries the span (replies are published
// under it).
func (tr *tracer) startAttempt(ctx context.Context, name string, it store.Claimed, a *delivery.Attempt) (context.Context, trace.Span) {
	f := scanStored(it.Event)
	parent := propagation.TraceContext{}.Extract(ctx, &f.w3cFields)
	kind := "grpc"
	if a.GRPC == "" {
		kind = "http"
	}
	start := time.Now()
	attrs := append(eventAttributes(f.id, f.source, f.typ, f.subject),
		messagingSystem,
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("deliver"),
		semconv.MessagingDestinationName(name),
		attrAttempt.Int(it.Attempt),
		attrTargetKind.String(kind),
	)
	if a.Round > 0 {
		attrs = append(attrs, attrRound.Int(a.Round))
	}
	if wait, ok := queueWait(it, start); ok {
		attrs = append(attrs, attrQueueWait.Float64(wait.Seconds()))
	}
	ctx, span := tr.t.Start(parent, "deliver "+name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	fields := map[string]string{}
	tr.prop.Inject(ctx, propagation.MapCarrier(fields))
	if len(fields) > 0 {
		a.Trace = fields
	}
	return ctx, span
}

// queueWait is how long the event waited for this attempt: since it was
// accepted (or put back by a replay) for the first attempt of its life,
// since the previous attempt ended for a retry (its backoff included).
func queueWait(it store.Claimed, now time.Time) (time.Duration, bool) {
	from := it.Born()
	if it.History != nil {
		hist := &switchyardv1.DeadLetter{}
		if proto.Unmarshal(it.History, hist) == nil {
			if as := hist.GetAttempts(); len(as) > 0 {
				last := as[len(as)-1]
				if end := last.GetStartTime().AsTime().Add(last.GetDuration().AsDuration()); end.After(from) {
					from = end
				}
			}
		}
	}
	if from.IsZero() || from.After(now) {
		return 0, false
	}
	return now.Sub(from), true
}

// grpcCodeNames are the gRPC status codes by canonical name.
var grpcCodeNames = func() map[string]bool {
	m := map[string]bool{}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		m[delivery.CodeName(c)] = true
	}
	return m
}()

// endAttempt records the attempt's outcome on its span and ends it. The
// outcome is the attempt's: ack, retry, or dead when the target refused
// the event for good or this was the last attempt the trigger allows (the
// completer may still dead-letter a retry for its age).
func (tr *tracer) endAttempt(span trace.Span, t *trigger.Trigger, it store.Claimed, a *delivery.Attempt, res delivery.Result) {
	outcome := "retry"
	switch {
	case res.Verdict == delivery.Ack:
		outcome = "ack"
	case res.Verdict == delivery.DeadNow, it.Attempt >= t.Spec.Delivery.MaxAttempts:
		outcome = "dead"
	}
	attrs := []attribute.KeyValue{attrOutcome.String(outcome), attrCode.String(res.Code)}
	switch {
	case res.HTTPStatus > 0:
		attrs = append(attrs, semconv.HTTPResponseStatusCode(res.HTTPStatus))
	case a.GRPC != "" && grpcCodeNames[res.Code]:
		attrs = append(attrs, semconv.RPCResponseStatusCode(res.Code))
	case a.GRPC != "" && (res.Code == "RETRY" || res.Code == "DEAD"):
		// The function answered OK with a retry or dead outcome.
		attrs = append(attrs, semconv.RPCResponseStatusCode("OK"))
	}
	if n := len(res.Replies); n > 0 {
		attrs = append(attrs, attrReplies.Int(n))
	}
	if res.Verdict != delivery.Ack {
		attrs = append(attrs, semconv.ErrorTypeKey.String(res.Code))
		span.SetStatus(otelcodes.Error, res.Message)
	}
	span.SetAttributes(attrs...)
	span.End()
}
