package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// TestReplyEventsAreRoutedAndLoopsStop: a function's reply events are
// published to the bus with the hop counter incremented, reach the triggers
// that match them, and a function answering its own events stops at the hop
// limit instead of looping forever: the event whose delivery would pass the
// limit is kept as a dead letter (HOP_LIMIT) without being sent, and
// counted. A hop count that is not a non-negative integer does not reset
// the guard.
func TestReplyEventsAreRoutedAndLoopsStop(t *testing.T) {
	b := testenv.Embedded(t)
	rec := &received{}
	var loops atomic.Int64
	replier := func(ctx context.Context, ev event.Event) (function.Result, error) {
		out := event.New()
		out.SetID("reply-to-" + ev.ID())
		out.SetSource("/billing")
		out.SetType("com.example.invoice.created")
		return function.Reply(out), nil
	}
	looper := func(ctx context.Context, ev event.Event) (function.Result, error) {
		n := loops.Add(1)
		out := event.New()
		out.SetID(fmt.Sprintf("loop-%d", n))
		out.SetSource("/loop")
		out.SetType("loop")
		return function.Reply(out), nil
	}
	e := startServer(t, b, func(c *server.Config) { c.Router.MaxHops = 3 })
	e.apply(t, fmt.Sprintf(`
name: orders
filter: {attributes: {type: com.example.order.created}}
target: {grpc: "%s"}
---
name: invoices
filter: {attributes: {type: com.example.invoice.created}}
target: {grpc: "%s"}
---
name: loop
filter: {attributes: {type: loop}}
target: {grpc: "%s"}
`, startFunction(t, replier), startFunction(t, recorder(rec)), startFunction(t, looper)))
	require.NoError(t, e.client.Publish(context.Background(), newEvent("o1", "com.example.order.created")))
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "reply delivered")
	got, _, ok := rec.byID("reply-to-o1")
	require.True(t, ok)
	require.EqualValues(t, 1, got.Extensions()[router.HopsExtension])

	require.NoError(t, e.client.Publish(context.Background(), newEvent("l0", "loop")))
	// l0 (hops 0) → loop-1 (1) → loop-2 (2) → loop-3 (3), whose delivery
	// would be hop 4 (> 3): dead-lettered without being sent.
	testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "loop")) == 1 }, "the event over the limit is dead-lettered")
	dl := deadLetters(t, e.client, "loop")[0]
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, dl.GetReason())
	require.Equal(t, "loop-3", dl.GetEvent().GetId(), "the event whose delivery would pass the limit is the dead letter's event")
	require.Equal(t, "this delivery would be hop 4, over the hop limit of 3: the event's switchyardhops is 3 (it came back through Switchyard that often: a loop?)", dl.GetReasonDetail())
	require.Empty(t, dl.GetAttempts(), "not sent")
	requireQueueDone(t, e, "loop", 3)
	require.EqualValues(t, 3, loops.Load(), "the function ran for l0, loop-1 and loop-2 only")
	require.Equal(t, 1.0, metricValue(t, e, "switchyard_dead_letters_total", "loop", "HOP_LIMIT"))

	// A negative (or garbled) hop count, as a publisher may send it, would
	// reset the loop guard: it is refused at ingest (400 naming the
	// attribute), over HTTP and gRPC alike, and nothing is accepted.
	for _, hops := range []string{"-100", "lots", "1.5"} {
		st, body := e.post(t, "application/json", map[string]string{
			"Ce-Specversion": "1.0", "Ce-Id": "bad-hops-" + hops, "Ce-Source": "/p", "Ce-Type": "loop", "Ce-Switchyardhops": hops,
		}, []byte(`{}`))
		require.Equal(t, 400, st, "hops %q", hops)
		require.Equal(t, "/problems/invalid-attribute", body["type"])
		require.Contains(t, body["detail"], "switchyardhops")
		errs, _ := body["errors"].([]any)
		require.Len(t, errs, 1)
		require.Equal(t, router.HopsExtension, errs[0].(map[string]any)["attribute"])
	}
	ev := newEvent("bad-hops-grpc", "loop")
	ev.SetExtension(router.HopsExtension, -1)
	err := e.client.Publish(context.Background(), ev)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "switchyardhops")
	require.EqualValues(t, 3, loops.Load(), "nothing was accepted")
	require.Equal(t, 1.0, metricValue(t, e, "switchyard_dead_letters_total", "loop", "HOP_LIMIT"))
}

// rawFunction is a function written against the generated gRPC code, as a
// function in another language would be: it answers every event with the
// replies given, whatever they hold.
type rawFunction struct {
	functionv1.UnimplementedFunctionServiceServer
	replies []*pb.CloudEvent
	calls   atomic.Int64
}

func (f *rawFunction) Invoke(context.Context, *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	f.calls.Add(1)
	return &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_ACK, Replies: f.replies}, nil
}

func startRawFunction(t *testing.T, f *rawFunction) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	functionv1.RegisterFunctionServiceServer(s, f)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String()
}

// TestInvalidReplyIsDeadLetteredAndTheEventAcked: a reply that is not a
// valid CloudEvent does not make the function run again. The event is
// acknowledged after one invocation, the valid replies of the same answer
// are published, and each invalid reply is kept as a dead letter of its own
// (REPLY_INVALID, the field named as the protobuf CloudEvent names it),
// counted in switchyard_replies_refused_total.
func TestInvalidReplyIsDeadLetteredAndTheEventAcked(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		rec := &received{}
		var calls atomic.Int64
		replier := func(ctx context.Context, ev event.Event) (function.Result, error) {
			calls.Add(1)
			good := event.New()
			good.SetID("good-" + ev.ID())
			good.SetSource("/billing")
			good.SetType("com.example.invoice.created")
			bad := event.New() // no id
			bad.SetSource("/billing")
			bad.SetType("com.example.invoice.created")
			return function.Reply(good, bad), nil
		}
		raw := &rawFunction{replies: []*pb.CloudEvent{{Id: "no-version", Source: "/node", Type: "com.example.invoice.created"}}}
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: orders
filter: {attributes: {type: com.example.order.created}}
target: {grpc: "%s"}
---
name: node
filter: {attributes: {type: com.example.node}}
target: {grpc: "%s"}
---
name: invoices
filter: {attributes: {type: com.example.invoice.created}}
target: {grpc: "%s"}
`, startFunction(t, replier), startRawFunction(t, raw), startFunction(t, recorder(rec))))
		ctx := context.Background()
		require.NoError(t, e.client.Publish(ctx, newEvent("o1", "com.example.order.created")))
		require.NoError(t, e.client.Publish(ctx, newEvent("n1", "com.example.node")))

		testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "orders")) == 1 }, "invalid reply dead-lettered")
		dl := deadLetters(t, e.client, "orders")[0]
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, dl.GetReason())
		require.Equal(t, "/billing", dl.GetEvent().GetSource(), "the reply is the dead letter's event")
		require.Empty(t, dl.GetEvent().GetId())
		require.Equal(t, `reply 2 of 2 to event "o1" from "/test": missing required attribute "id"`, dl.GetReasonDetail())
		require.Len(t, dl.GetAttempts(), 1)
		require.Equal(t, "OK", dl.GetAttempts()[0].GetCode())
		requireQueueDone(t, e, "orders", 1)
		require.EqualValues(t, 1, calls.Load(), "the function ran once")
		testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "the valid reply is published")
		_, _, ok := rec.byID("good-o1")
		require.True(t, ok)

		testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, e.client, "node")) == 1 }, "reply without spec_version dead-lettered")
		dl = deadLetters(t, e.client, "node")[0]
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, dl.GetReason())
		require.Equal(t, "no-version", dl.GetEvent().GetId())
		require.Equal(t, `reply 1 of 1 to event "n1" from "/test": missing required attribute "spec_version"`, dl.GetReasonDetail())
		requireQueueDone(t, e, "node", 1)
		require.EqualValues(t, 1, raw.calls.Load())

		list, err := e.client.DeadLetters().ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{Reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID})
		require.NoError(t, err)
		require.Len(t, list.GetDeadLetters(), 2, "listed by reason")
		require.Equal(t, 1.0, metricValue(t, e, "switchyard_replies_refused_total", "orders", "REPLY_INVALID"))
		require.Equal(t, 1.0, metricValue(t, e, "switchyard_replies_refused_total", "node", "REPLY_INVALID"))
	})
}

// requireQueueDone checks that trigger's queue holds nothing and has
// acknowledged delivered attempts in all.
func requireQueueDone(t *testing.T, e *env, trigger string, delivered int64) {
	t.Helper()
	st, err := e.srv.Router().Store().Stats(context.Background(), trigger)
	require.NoError(t, err)
	require.Zero(t, st.Ready+st.InFlight+st.Delayed, "nothing left in the queue")
	require.Equal(t, fmt.Sprint(delivered), st.Counters["delivered"], "acknowledged")
}

// metricValue reads a counter with trigger and reason labels from the
// server's registry.
func metricValue(t *testing.T, e *env, name, trigger, reason string) float64 {
	t.Helper()
	mfs, err := e.srv.Router().Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["trigger"] == trigger && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	t.Fatalf("%s{trigger=%q,reason=%q} not found among %s", name, trigger, reason, strings.Join(names, ", "))
	return 0
}

// TestReplyPushbackRetriesTheAttempt: replies that cannot be stored now
// (their trigger's queue is full) exist nowhere else, so the attempt is
// retried (code REPLY_REFUSED) instead of acknowledged, and no reply is
// dead-lettered as invalid.
func TestReplyPushbackRetriesTheAttempt(t *testing.T) {
	b := testenv.Embedded(t)
	var mu sync.Mutex
	calls := map[string]int{}
	replier := func(ctx context.Context, ev event.Event) (function.Result, error) {
		mu.Lock()
		calls[ev.ID()]++
		mu.Unlock()
		out := event.New()
		out.SetID("reply-to-" + ev.ID())
		out.SetSource("/billing")
		out.SetType("com.example.invoice.created")
		return function.Reply(out), nil
	}
	e := startServer(t, b, nil)
	e.apply(t, fmt.Sprintf(`
name: orders
filter: {attributes: {type: com.example.order.created}}
target: {grpc: "%s"}
delivery: {max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms}
---
name: invoices
filter: {attributes: {type: com.example.invoice.created}}
target: {grpc: "127.0.0.1:1"}
delivery: {max_queue: 1, initial_backoff: 1m, max_backoff: 1m}
`, startFunction(t, replier)))
	ctx := context.Background()
	require.NoError(t, e.client.Publish(ctx, newEvent("o1", "com.example.order.created")))
	requireEventually := func(what string, cond func() bool) { testenv.Eventually(t, 10*time.Second, cond, "%s", what) }
	requireEventually("o1 acknowledged, its reply queued for invoices", func() bool {
		st, err := e.srv.Router().Store().Stats(ctx, "orders")
		return err == nil && st.Counters["delivered"] == "1"
	})

	require.NoError(t, e.client.Publish(ctx, newEvent("o2", "com.example.order.created")))
	requireEventually("o2 dead-lettered after its attempts", func() bool { return len(deadLetters(t, e.client, "orders")) == 1 })
	dl := deadLetters(t, e.client, "orders")[0]
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS, dl.GetReason())
	require.Equal(t, "o2", dl.GetEvent().GetId(), "the event itself, not a reply")
	require.Len(t, dl.GetAttempts(), 2)
	for _, a := range dl.GetAttempts() {
		require.Equal(t, "REPLY_REFUSED", a.GetCode())
		require.Contains(t, a.GetMessage(), `"invoices"`, "names the full trigger")
	}
	mu.Lock()
	require.Equal(t, 2, calls["o2"], "retried: the reply could not be stored")
	mu.Unlock()
}
