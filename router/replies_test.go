package router

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/trigger"
)

func withHops(v *pb.CloudEventAttributeValue) *pb.CloudEvent {
	ev := &pb.CloudEvent{Id: "p1", Source: "/shop", SpecVersion: "1.0", Type: "t"}
	if v != nil {
		ev.Attributes = map[string]*pb.CloudEventAttributeValue{HopsExtension: v}
	}
	return ev
}

func hopsString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func hopsInt(n int32) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: n}}
}

// TestHops: a count is a non-negative ce_integer or a string of digits;
// anything else is an error, never a count of 0 that resets the loop guard.
func TestHops(t *testing.T) {
	for name, tc := range map[string]struct {
		v    *pb.CloudEventAttributeValue
		want int
	}{
		"absent":        {nil, 0},
		"integer":       {hopsInt(3), 3},
		"zero":          {hopsInt(0), 0},
		"string digits": {hopsString("15"), 15},
		"leading zeros": {hopsString("007"), 7},
		"int32 max":     {hopsString("2147483647"), 1<<31 - 1},
	} {
		n, err := Hops(withHops(tc.v))
		require.NoError(t, err, name)
		require.Equal(t, tc.want, n, name)
	}
	for name, v := range map[string]*pb.CloudEventAttributeValue{
		"negative integer": hopsInt(-1),
		"negative string":  hopsString("-100"),
		"plus sign":        hopsString("+3"),
		"not a number":     hopsString("abc"),
		"empty":            hopsString(""),
		"spaces":           hopsString(" 3"),
		"beyond int32":     hopsString("2147483648"),
		"too long":         hopsString("00000000001"),
		"boolean":          {Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}},
		"no value":         {},
	} {
		_, err := Hops(withHops(v))
		require.ErrorIs(t, err, ErrInvalidHops, name)
		require.Contains(t, err.Error(), HopsExtension, name)
	}
}

func FuzzHops(f *testing.F) {
	for _, s := range []string{"0", "16", "-1", "+1", "abc", "", "2147483647", "2147483648", "99999999999", "1e3", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Hops(withHops(hopsString(s)))
		digits := s != ""
		for i := 0; i < len(s); i++ {
			digits = digits && s[i] >= '0' && s[i] <= '9'
		}
		want, perr := strconv.ParseInt(s, 10, 32)
		if digits && perr == nil && len(s) <= 10 {
			require.NoError(t, err)
			require.EqualValues(t, want, n)
			return
		}
		require.ErrorIs(t, err, ErrInvalidHops)
		require.Zero(t, n)
	})
}

// TestPublishRepliesRefusesWithoutPublishing: invalid replies and replies
// over the hop limit are refused (returned, not an error), each with a
// detail naming the reply, the event it answers and the field as the
// protobuf CloudEvent names it; nothing is published, so the router needs
// no store.
func TestPublishRepliesRefusesWithoutPublishing(t *testing.T) {
	r := &Router{cfg: Config{MaxHops: 3}}
	ctx := context.Background()
	valid := &pb.CloudEvent{Id: "r1", Source: "/billing", SpecVersion: "1.0", Type: "invoice"}
	noVersion := &pb.CloudEvent{Id: "r2", Source: "/billing", Type: "invoice"}
	badSchema := &pb.CloudEvent{Id: "r3", Source: "/billing", SpecVersion: "1.0", Type: "invoice",
		Attributes: map[string]*pb.CloudEventAttributeValue{"dataschema": {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "type.googleapis.com/x.Y"}}}}

	refused, err := r.publishReplies(ctx, withHops(hopsInt(1)), []*pb.CloudEvent{noVersion, badSchema})
	require.NoError(t, err)
	require.Len(t, refused, 2)
	require.Same(t, noVersion, refused[0].event, "the reply as the function sent it")
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, refused[0].reason)
	require.Equal(t, `reply 1 of 2 to event "p1" from "/shop": missing required attribute "spec_version"`, refused[0].detail)
	require.Contains(t, refused[1].detail, `reply 2 of 2 to event "p1" from "/shop": attribute "dataschema": not an absolute URI`)

	for name, parent := range map[string]*pb.CloudEvent{
		"at the limit":      withHops(hopsInt(3)),
		"negative count":    withHops(hopsString("-100")),
		"not an integer":    withHops(hopsString("many")),
		"over, as a string": withHops(hopsString("40")),
	} {
		refused, err := r.publishReplies(ctx, parent, []*pb.CloudEvent{valid, noVersion})
		require.NoError(t, err, name)
		require.Len(t, refused, 2, name)
		for i, rf := range refused {
			require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, rf.reason, name)
			require.True(t, strings.HasPrefix(rf.detail, "reply "+strconv.Itoa(i+1)+" of 2 to event \"p1\""), rf.detail)
		}
		_, herr := Hops(parent)
		if herr != nil {
			require.Contains(t, refused[0].detail, herr.Error(), name)
		} else {
			require.Contains(t, refused[0].detail, "over the hop limit of 3", name)
		}
		require.Nil(t, refused[0].event.GetAttributes()[HopsExtension], "the reply is kept as sent")
	}
}

// TestRefusedLettersTellTheStory: each refused reply becomes a dead letter
// of its own with the reason, the detail, the attempt that produced it and
// the reply as its event, counted once per reply.
func TestRefusedLettersTellTheStory(t *testing.T) {
	d, _ := testDispatcher(t, trigger.Target{GRPC: "127.0.0.1:1"}, delivery.Result{Verdict: delivery.Ack})
	parent := withHops(nil)
	parent.Attributes = map[string]*pb.CloudEventAttributeValue{"traceparent": hopsString("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}
	raw, err := proto.Marshal(parent)
	require.NoError(t, err)
	reply := &pb.CloudEvent{Id: "r1", Source: "/billing", Type: "invoice", Data: &pb.CloudEvent_TextData{TextData: `{"a":1}`}}
	start := time.Now().Add(-time.Second)
	o := outcome{item: claimed(raw), res: delivery.Result{Verdict: delivery.Ack, Code: "OK", Start: start, Duration: 5 * time.Millisecond},
		refused: []refusedReply{{reply, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, "why"}, {reply, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, "loop"}}}
	now := time.Now()
	la := d.refusedLetters(o, d.trig.Load(), now)
	require.Equal(t, o.item.ID, la.ID)
	require.Equal(t, 1, la.Attempt)
	require.Len(t, la.Letters, 2)
	for i, want := range []switchyardv1.DeadLetterReason{switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT} {
		ev := &pb.CloudEvent{}
		require.NoError(t, proto.Unmarshal(la.Letters[i].Event, ev))
		require.True(t, proto.Equal(reply, ev))
		dl := &switchyardv1.DeadLetter{}
		require.NoError(t, proto.Unmarshal(la.Letters[i].Letter, dl))
		require.Equal(t, want, dl.GetReason())
		require.Equal(t, "t", dl.GetTrigger())
		require.Equal(t, "grpc://127.0.0.1:1", dl.GetTarget())
		require.Equal(t, now.UnixMilli(), dl.GetDeadTime().AsTime().UnixMilli())
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", dl.GetTraceId(), "the parent's trace when the reply has none")
		require.Len(t, dl.GetAttempts(), 1)
		require.EqualValues(t, 1, dl.GetAttempts()[0].GetNumber())
		require.Equal(t, "OK", dl.GetAttempts()[0].GetCode())
		require.Equal(t, start.UnixMilli(), dl.GetAttempts()[0].GetStartTime().AsTime().UnixMilli())
	}
	require.Equal(t, "why", mustLetter(t, la.Letters[0].Letter).GetReasonDetail())
	require.Equal(t, "loop", mustLetter(t, la.Letters[1].Letter).GetReasonDetail())
	require.Equal(t, 1.0, counterValue(t, d.r, "switchyard_replies_refused_total", "REPLY_INVALID"))
	require.Equal(t, 1.0, counterValue(t, d.r, "switchyard_replies_refused_total", "HOP_LIMIT"))
	require.Equal(t, 1.0, counterValue(t, d.r, "switchyard_dead_letters_total", "HOP_LIMIT"))
}

func mustLetter(t *testing.T, b []byte) *switchyardv1.DeadLetter {
	t.Helper()
	dl := &switchyardv1.DeadLetter{}
	require.NoError(t, proto.Unmarshal(b, dl))
	return dl
}

// counterValue reads the value of a counter with the given reason label.
func counterValue(t *testing.T, r *Router, name, reason string) float64 {
	t.Helper()
	mfs, err := r.metrics.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal(errors.New(name + "{reason=" + reason + "} not found"))
	return 0
}
