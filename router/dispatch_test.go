package router

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/logging"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

type fakeInvoker struct {
	res delivery.Result
	got []*delivery.Attempt
}

func (f *fakeInvoker) Invoke(_ context.Context, a *delivery.Attempt) delivery.Result {
	f.got = append(f.got, a)
	return f.res
}

func (f *fakeInvoker) Close() error { return nil }

func testDispatcher(t *testing.T, target trigger.Target, res delivery.Result) (*dispatcher, *fakeInvoker) {
	t.Helper()
	inv := &fakeInvoker{res: res}
	r := &Router{cfg: Config{MaxHops: DefaultMaxHops}, log: slog.New(slog.DiscardHandler), metrics: newMetrics(MetricsConfig{}), logLimit: logging.NewLimiter(0, 0), invoker: inv, attemptCtx: context.Background()}
	tr, err := trigger.Compile(trigger.Spec{Name: "t", Target: target})
	require.NoError(t, err)
	d := &dispatcher{r: r, name: "t", series: r.metrics.track("t"), log: r.log, results: make(chan outcome, 1)}
	d.trig.Store(tr)
	return d, inv
}

func claimed(event []byte) store.Claimed {
	return store.Claimed{ID: strconv.FormatInt(time.Now().UnixMilli(), 10) + "-0", Attempt: 1, Event: event}
}

// An unreadable stored event is dead-lettered without an attempt, as when
// attempts decoded it.
func TestAttemptUnreadableEventDeadLetters(t *testing.T) {
	d, inv := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, delivery.Result{Verdict: delivery.Ack})
	tr := d.trig.Load()
	for _, raw := range [][]byte{{0x0a, 0x01, 0xff}, {0x0a, 0x05, 'a'}, {0x00}} {
		d.attempt(tr, claimed(raw))
		o := <-d.results
		require.True(t, o.noTry)
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, o.reason)
		require.True(t, strings.HasPrefix(o.detail, "stored event is unreadable: "), o.detail)
		rt, dl := d.decide(o, tr, time.Now())
		require.Nil(t, rt)
		require.NotNil(t, dl)
		require.False(t, dl.Failed)
		letter := &switchyardv1.DeadLetter{}
		require.NoError(t, proto.Unmarshal(dl.Letter, letter))
		require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, letter.GetReason())
		require.Empty(t, letter.GetAttempts())
	}
	require.Empty(t, inv.got)
}

// gRPC targets get the stored bytes and the event is not decoded unless
// something needs it; HTTP targets get it decoded.
func TestAttemptDecodesOnlyWhenNeeded(t *testing.T) {
	ev := &pb.CloudEvent{Id: "e-1", Source: "/s", SpecVersion: "1.0", Type: "t",
		Attributes: map[string]*pb.CloudEventAttributeValue{"traceparent": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}}
	raw, err := proto.Marshal(ev)
	require.NoError(t, err)
	ack := delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
	fail := delivery.Result{Verdict: delivery.Retry, Code: "UNAVAILABLE", Start: time.Now()}

	d, inv := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, ack)
	d.attempt(d.trig.Load(), claimed(raw))
	o := <-d.results
	require.False(t, o.noTry)
	require.Nil(t, o.ev, "an acknowledged gRPC attempt decodes nothing")
	a := inv.got[0]
	require.Equal(t, raw, a.Raw)
	require.Equal(t, "/s e-1", a.Key)
	require.Nil(t, a.Event)

	d, _ = testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, fail)
	d.attempt(d.trig.Load(), claimed(raw))
	o = <-d.results
	rt, dl := d.decide(o, d.trig.Load(), time.Now())
	require.Nil(t, dl)
	require.NotNil(t, rt)
	require.True(t, proto.Equal(ev, o.event()))
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", traceIDOf(o.event()))

	d, inv = testDispatcher(t, trigger.Target{URL: "http://127.0.0.1:1/"}, ack)
	d.attempt(d.trig.Load(), claimed(raw))
	<-d.results
	require.True(t, proto.Equal(ev, inv.got[0].Event))
}

// Every delivery carries the event's hop count plus one; one that would
// pass MaxHops, or whose event's count is unreadable, is dead-lettered
// (HOP_LIMIT) without being sent.
func TestDeliveryHopCount(t *testing.T) {
	withHops := func(v *pb.CloudEventAttributeValue) []byte {
		ev := &pb.CloudEvent{Id: "e-1", Source: "/s", SpecVersion: "1.0", Type: "t"}
		if v != nil {
			ev.Attributes = map[string]*pb.CloudEventAttributeValue{HopsExtension: v}
		}
		raw, err := proto.Marshal(ev)
		require.NoError(t, err)
		return raw
	}
	ack := delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
	for name, tc := range map[string]struct {
		raw  []byte
		hops int // sent; 0: dead-lettered instead
	}{
		"no count":         {withHops(nil), 1},
		"integer":          {withHops(hopsInt(3)), 4},
		"string from HTTP": {withHops(hopsString("15")), DefaultMaxHops},
		"at the limit":     {withHops(hopsInt(DefaultMaxHops)), 0},
		"far over":         {withHops(hopsString("1000")), 0},
		"unreadable":       {withHops(hopsString("-1")), 0},
		"another type":     {withHops(&pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}}), 0},
	} {
		t.Run(name, func(t *testing.T) {
			for _, target := range []trigger.Target{{URL: "http://127.0.0.1:1/"}, {GRPC: "127.0.0.1:1"}} {
				d, inv := testDispatcher(t, target, ack)
				d.attempt(d.trig.Load(), claimed(tc.raw))
				o := <-d.results
				if tc.hops > 0 {
					require.False(t, o.noTry)
					require.Len(t, inv.got, 1)
					require.Equal(t, tc.hops, inv.got[0].Hops)
					continue
				}
				require.Empty(t, inv.got, "not sent")
				require.True(t, o.noTry)
				_, dl := d.decide(o, d.trig.Load(), time.Now())
				require.NotNil(t, dl)
				letter := &switchyardv1.DeadLetter{}
				require.NoError(t, proto.Unmarshal(dl.Letter, letter))
				require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, letter.GetReason())
				require.Contains(t, letter.GetReasonDetail(), HopsExtension)
			}
		})
	}
}
