package router

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

const (
	originParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	originState  = "congo=t61rcWkgMzE"
)

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

// Stamping appends the trace context to the encoding: decoded, it is the
// event with the attributes set; an event with its own traceparent keeps
// it, and its tracestate too.
func TestStampAddsTraceContextWhenAbsent(t *testing.T) {
	st := traceStamp{parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", state: "rojo=00f067aa0ba902b7"}
	for name, tc := range map[string]struct {
		ev         *pb.CloudEvent
		stamp      traceStamp
		wantParent string
		wantState  string
	}{
		"bare":              {ev: &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t"}, stamp: st, wantParent: st.parent, wantState: st.state},
		"with data":         {ev: &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t", Attributes: map[string]*pb.CloudEventAttributeValue{"subject": ceString("x")}, Data: &pb.CloudEvent_TextData{TextData: "{}"}}, stamp: st, wantParent: st.parent, wantState: st.state},
		"no state":          {ev: &pb.CloudEvent{Id: "1"}, stamp: traceStamp{parent: st.parent}, wantParent: st.parent},
		"own traceparent":   {ev: &pb.CloudEvent{Id: "1", Attributes: map[string]*pb.CloudEventAttributeValue{"traceparent": ceString(originParent)}}, stamp: st, wantParent: originParent},
		"own parent, state": {ev: &pb.CloudEvent{Id: "1", Attributes: map[string]*pb.CloudEventAttributeValue{"traceparent": ceString(originParent), "tracestate": ceString(originState)}}, stamp: st, wantParent: originParent, wantState: originState},
		"tracing off":       {ev: &pb.CloudEvent{Id: "1"}, stamp: traceStamp{}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := proto.Marshal(tc.ev)
			require.NoError(t, err)
			got := &pb.CloudEvent{}
			require.NoError(t, proto.Unmarshal(tc.stamp.stamp(tc.ev, b), got))
			want := proto.Clone(tc.ev).(*pb.CloudEvent)
			if tc.wantParent != "" {
				if want.Attributes == nil {
					want.Attributes = map[string]*pb.CloudEventAttributeValue{}
				}
				want.Attributes["traceparent"] = ceString(tc.wantParent)
			}
			if tc.wantState != "" {
				want.Attributes["tracestate"] = ceString(tc.wantState)
			}
			require.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
			_, err = delivery.ScanEvent(tc.stamp.stamp(tc.ev, b))
			require.NoError(t, err)
			f := scanStored(tc.stamp.stamp(tc.ev, b))
			require.Equal(t, tc.wantParent, f.traceparent)
			require.Equal(t, tc.wantState, f.tracestate)
		})
	}
}

// scanStored reads what proto.Unmarshal reads, whatever the encoding.
func FuzzScanStored(f *testing.F) {
	for _, ev := range []*pb.CloudEvent{
		{},
		{Id: "e-1", Source: "/s", SpecVersion: "1.0", Type: "com.example", Attributes: map[string]*pb.CloudEventAttributeValue{
			"subject": ceString("eu-1"), "traceparent": ceString(originParent), "tracestate": ceString(originState),
			"time": {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.Now()}},
		}, Data: &pb.CloudEvent_BinaryData{BinaryData: []byte{1, 2, 3}}},
		{Id: "e-2", Attributes: map[string]*pb.CloudEventAttributeValue{"subject": {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 4}}}},
	} {
		b, err := proto.Marshal(ev)
		require.NoError(f, err)
		f.Add(b)
		f.Add(traceStamp{parent: originParent, state: originState}.stamp(ev, b))
	}
	// A value message twice in one entry (they merge), a string then an
	// integer (the integer wins), a key twice.
	f.Add([]byte{0x2a, 0x0e, 0x0a, 0x07, 's', 'u', 'b', 'j', 'e', 'c', 't', 0x12, 0x03, 0x1a, 0x01, 'x'})
	f.Add([]byte{0x2a, 0x11, 0x0a, 0x07, 's', 'u', 'b', 'j', 'e', 'c', 't', 0x12, 0x06, 0x1a, 0x01, 'x', 0x10, 0x05})
	f.Add([]byte{0x2a, 0x13, 0x0a, 0x01, 'a', 0x0a, 0x07, 's', 'u', 'b', 'j', 'e', 'c', 't', 0x12, 0x03, 0x1a, 0x01, 'x', 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := scanStored(b)
		ev := &pb.CloudEvent{}
		if proto.Unmarshal(b, ev) != nil {
			return
		}
		require.Equal(t, ev.GetId(), got.id)
		require.Equal(t, ev.GetSource(), got.source)
		require.Equal(t, ev.GetType(), got.typ)
		require.Equal(t, stringAttr(ev, "subject"), got.subject)
		require.Equal(t, stringAttr(ev, "traceparent"), got.traceparent)
		require.Equal(t, stringAttr(ev, "tracestate"), got.tracestate)
	})
}

func TestQueueWait(t *testing.T) {
	now := time.Now()
	accepted := now.Add(-3 * time.Second)
	id := strconv.FormatInt(accepted.UnixMilli(), 10) + "-0"
	w, ok := queueWait(store.Claimed{ID: id, Attempt: 1}, now)
	require.True(t, ok)
	require.InDelta(t, 3, w.Seconds(), 0.01, "first attempt: since accepted")

	hist, err := proto.Marshal(&switchyardv1.DeadLetter{Attempts: []*switchyardv1.Attempt{{Number: 1, StartTime: timestamppb.New(now.Add(-2 * time.Second)), Duration: durationpb.New(500 * time.Millisecond)}}})
	require.NoError(t, err)
	w, ok = queueWait(store.Claimed{ID: id, Attempt: 2, History: hist}, now)
	require.True(t, ok)
	require.InDelta(t, 1.5, w.Seconds(), 0.01, "retry: since the previous attempt ended")

	replayed := now.Add(-time.Second)
	w, ok = queueWait(store.Claimed{ID: "r1-0@t", Attempt: 1, History: hist, Since: replayed}, now)
	require.True(t, ok)
	require.InDelta(t, 1, w.Seconds(), 0.01, "replay: since put back")

	_, ok = queueWait(store.Claimed{ID: "garbage", Attempt: 1}, now)
	require.False(t, ok)
}

// recordedRouter starts a router on the embedded store whose spans go to a
// recorder, with a trigger "orders" for events of type "order" delivered by
// inv.
func recordedRouter(t *testing.T, inv delivery.Invoker) (*Router, *tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	b := testenv.Embedded(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler), SweepInterval: 100 * time.Millisecond,
		Tracing: Tracing{Provider: tp}}, b.Client, inv)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(sctx))
	})
	spec := trigger.Spec{Name: "orders", Target: trigger.Target{GRPC: "127.0.0.1:1"}, Filter: filter.Spec{Attributes: map[string]string{"type": "order"}},
		Delivery: trigger.Delivery{MaxAttempts: 3, InitialBackoff: trigger.Duration{Duration: 10 * time.Millisecond}, MaxBackoff: trigger.Duration{Duration: 20 * time.Millisecond}}}
	c, err := trigger.Compile(spec)
	require.NoError(t, err)
	_, _, err = r.PutTrigger(ctx, trigger.ToProto(c.Spec), store.PutApply, 0)
	require.NoError(t, err)
	return r, rec, tp.Tracer("test")
}

// failOnce fails each event's first attempt and acknowledges the next,
// keeping every attempt's trace context.
type failOnce struct {
	mu     sync.Mutex
	traces []map[string]string
	events []*pb.CloudEvent
}

func (f *failOnce) Invoke(_ context.Context, a *delivery.Attempt) delivery.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traces = append(f.traces, a.Trace)
	ev := &pb.CloudEvent{}
	_ = proto.Unmarshal(a.Raw, ev)
	f.events = append(f.events, ev)
	if a.Number == 1 {
		return delivery.Result{Verdict: delivery.Retry, Code: "UNAVAILABLE", Message: "not yet", Health: true, Start: time.Now()}
	}
	return delivery.Result{Verdict: delivery.Ack, Code: "OK", Start: time.Now()}
}

func (f *failOnce) Close() error { return nil }

func (f *failOnce) seen() ([]map[string]string, []*pb.CloudEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.traces...), append([]*pb.CloudEvent(nil), f.events...)
}

func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// A publish under a caller's span gets a publish span, child of it; the
// stored event carries the publish span's context; each attempt is a span
// child of it whose context reaches the target, the retry included, with
// the outcome and the queue wait.
func TestTracingPublishAndAttempts(t *testing.T) {
	inv := &failOnce{}
	r, rec, tracer := recordedRouter(t, inv)
	ctx, caller := tracer.Start(context.Background(), "caller")
	_, err := r.Publish(ctx, []*pb.CloudEvent{{Id: "o-1", Source: "/shop", SpecVersion: "1.0", Type: "order",
		Attributes: map[string]*pb.CloudEventAttributeValue{"subject": ceString("eu-1")}}})
	require.NoError(t, err)
	caller.End()
	testenv.Eventually(t, 10*time.Second, func() bool { return len(spansNamed(rec, "deliver orders")) == 2 }, "two attempt spans")

	pubs := spansNamed(rec, "publish")
	require.Len(t, pubs, 1)
	pub := pubs[0]
	require.Equal(t, trace.SpanKindProducer, pub.SpanKind())
	require.Equal(t, caller.SpanContext().SpanID(), pub.Parent().SpanID(), "publish is a child of the caller's span")
	for key, want := range map[attribute.Key]any{
		"messaging.system": "switchyard", "messaging.operation.type": "send", "messaging.batch.message_count": int64(1),
		"switchyard.publish.routed": int64(1), "cloudevents.event_id": "o-1", "cloudevents.event_subject": "eu-1",
	} {
		v, ok := attrOf(pub, key)
		require.True(t, ok, key)
		require.Equal(t, want, v.AsInterface(), key)
	}
	v, _ := attrOf(pub, "switchyard.publish.triggers")
	require.Equal(t, []string{"orders"}, v.AsStringSlice())

	traces, events := inv.seen()
	require.Len(t, traces, 2)
	var c w3cFields
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), pub.SpanContext()), &c)
	for _, ev := range events {
		require.Equal(t, c.traceparent, stringAttr(ev, "traceparent"), "the stored event carries the publish span's context")
	}
	attempts := spansNamed(rec, "deliver orders")
	for i, a := range attempts {
		require.Equal(t, trace.SpanKindClient, a.SpanKind())
		require.Equal(t, pub.SpanContext().TraceID(), a.SpanContext().TraceID())
		require.Equal(t, pub.SpanContext().SpanID(), a.Parent().SpanID(), "attempt %d is a child of the publish", i+1)
		n, _ := attrOf(a, "switchyard.delivery.attempt")
		var sent w3cFields
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), a.SpanContext()), &sent)
		require.Equal(t, sent.traceparent, traces[n.AsInt64()-1]["traceparent"], "the target gets attempt %d's context", n.AsInt64())
		_, ok := attrOf(a, "switchyard.queue.wait")
		require.True(t, ok)
		dest, _ := attrOf(a, "messaging.destination.name")
		require.Equal(t, "orders", dest.AsString())
		id, _ := attrOf(a, "cloudevents.event_id")
		require.Equal(t, "o-1", id.AsString())
		out, _ := attrOf(a, "switchyard.delivery.outcome")
		code, _ := attrOf(a, "rpc.response.status_code")
		if n.AsInt64() == 1 {
			require.Equal(t, "retry", out.AsString())
			require.Equal(t, "UNAVAILABLE", code.AsString())
			require.Equal(t, otelcodes.Error, a.Status().Code)
		} else {
			require.Equal(t, "ack", out.AsString())
			require.Equal(t, "OK", code.AsString())
			require.Equal(t, otelcodes.Unset, a.Status().Code)
		}
	}
}

// An event created in another trace keeps its traceparent: its attempts
// continue that trace, and the publish span links to it.
func TestTracingKeepsTheEventsOwnContext(t *testing.T) {
	inv := &failOnce{}
	r, rec, _ := recordedRouter(t, inv)
	_, err := r.Publish(context.Background(), []*pb.CloudEvent{{Id: "o-2", Source: "/shop", SpecVersion: "1.0", Type: "order",
		Attributes: map[string]*pb.CloudEventAttributeValue{"traceparent": ceString(originParent), "tracestate": ceString(originState)}}})
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(spansNamed(rec, "deliver orders")) == 2 }, "two attempt spans")
	pub := spansNamed(rec, "publish")[0]
	require.False(t, pub.Parent().IsValid(), "no caller span: the publish starts a trace")
	require.Len(t, pub.Links(), 1)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", pub.Links()[0].SpanContext.TraceID().String())
	_, events := inv.seen()
	for _, ev := range events {
		require.Equal(t, originParent, stringAttr(ev, "traceparent"))
		require.Equal(t, originState, stringAttr(ev, "tracestate"))
	}
	for _, a := range spansNamed(rec, "deliver orders") {
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", a.SpanContext().TraceID().String())
		require.Equal(t, "00f067aa0ba902b7", a.Parent().SpanID().String())
		require.Equal(t, originState, a.SpanContext().TraceState().String())
	}
}

// With tracing off nothing is stamped and attempts carry no trace context.
func TestTracingOffTouchesNothing(t *testing.T) {
	b := testenv.Embedded(t)
	inv := &failOnce{}
	r, err := New(Config{Prefix: b.Prefix, Logger: slog.New(slog.DiscardHandler), SweepInterval: 100 * time.Millisecond}, b.Client, inv)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, r.Start(ctx))
	defer func() { require.NoError(t, r.Shutdown(ctx)) }()
	require.Nil(t, r.tr)
	spec := trigger.Spec{Name: "orders", Target: trigger.Target{GRPC: "127.0.0.1:1"}, Filter: filter.Spec{Attributes: map[string]string{"type": "order"}},
		Delivery: trigger.Delivery{InitialBackoff: trigger.Duration{Duration: 10 * time.Millisecond}, MaxBackoff: trigger.Duration{Duration: 20 * time.Millisecond}}}
	c, err := trigger.Compile(spec)
	require.NoError(t, err)
	_, _, err = r.PutTrigger(ctx, trigger.ToProto(c.Spec), store.PutApply, 0)
	require.NoError(t, err)
	sent := &pb.CloudEvent{Id: "o-3", Source: "/shop", SpecVersion: "1.0", Type: "order"}
	_, err = r.Publish(ctx, []*pb.CloudEvent{sent})
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, func() bool { tr, _ := inv.seen(); return len(tr) == 2 }, "two attempts")
	traces, events := inv.seen()
	for i := range traces {
		require.Nil(t, traces[i])
		require.True(t, proto.Equal(sent, events[i]), "stored as sent")
	}
}

// A publish made at most once (a schedule's tick) is traced as a publish:
// a PRODUCER span, child of the caller's (the runner's batch span), with
// the messaging and CloudEvents attributes, its key and sequence number;
// the stored event carries its context, so the attempt is its child. The
// same tick tried again (as every other instance does) records a span
// that says it published nothing.
func TestTracingPublishOnce(t *testing.T) {
	inv := &failOnce{}
	r, rec, tracer := recordedRouter(t, inv)
	tick := time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC)
	ev := func() *pb.CloudEvent {
		return &pb.CloudEvent{Id: "nightly@" + tick.Format(time.RFC3339), Source: "/switchyard/schedule/nightly", SpecVersion: "1.0", Type: "order",
			Attributes: map[string]*pb.CloudEventAttributeValue{"time": {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(tick)}}}}
	}
	ctx, caller := tracer.Start(context.Background(), "receive nightly")
	published, err := r.PublishOnce(ctx, "nightly", tick.UnixMilli(), []*pb.CloudEvent{ev()})
	require.NoError(t, err)
	require.True(t, published)
	again, err := r.PublishOnce(ctx, "nightly", tick.UnixMilli(), []*pb.CloudEvent{ev()})
	require.NoError(t, err)
	require.False(t, again, "the tick was taken")
	caller.End()
	testenv.Eventually(t, 10*time.Second, func() bool { return len(spansNamed(rec, "deliver orders")) == 2 }, "two attempt spans")

	pubs := spansNamed(rec, "publish")
	require.Len(t, pubs, 2)
	for i, pub := range pubs {
		require.Equal(t, trace.SpanKindProducer, pub.SpanKind())
		require.Equal(t, caller.SpanContext().SpanID(), pub.Parent().SpanID(), "publish %d is a child of the caller's span", i)
		require.Equal(t, otelcodes.Unset, pub.Status().Code)
		want := map[attribute.Key]any{
			"messaging.system": "switchyard", "messaging.operation.type": "send", "messaging.operation.name": "publish",
			"messaging.batch.message_count": int64(1), "cloudevents.event_id": "nightly@2026-12-24T18:00:00Z",
			"cloudevents.event_source": "/switchyard/schedule/nightly", "cloudevents.event_type": "order",
			"switchyard.publish.once.key": "nightly", "switchyard.publish.once.seq": tick.UnixMilli(),
			"switchyard.publish.once.published": i == 0, "switchyard.publish.routed": int64(1 - i),
		}
		for key, w := range want {
			v, ok := attrOf(pub, key)
			require.True(t, ok, "publish %d: %s", i, key)
			require.Equal(t, w, v.AsInterface(), "publish %d: %s", i, key)
		}
	}
	first := pubs[0]
	traces, events := inv.seen()
	var c w3cFields
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), first.SpanContext()), &c)
	for i, ev := range events {
		require.Equal(t, c.traceparent, stringAttr(ev, "traceparent"), "the stored tick carries its publish span's context")
		require.NotEmpty(t, traces[i]["traceparent"])
	}
	for _, a := range spansNamed(rec, "deliver orders") {
		require.Equal(t, first.SpanContext().SpanID(), a.Parent().SpanID(), "the attempt is a child of the publish that wrote the tick")
	}
}
