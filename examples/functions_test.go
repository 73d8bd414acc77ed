package examples

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// retryMS is the delay the "r1" event asks for on its first attempt.
const retryMS = 700

// published returns the events sent to the example functions: every
// attribute type of the protobuf format, JSON, binary and text data, and
// one event asking to be retried. Times are whole milliseconds and JSON is
// compact, the forms the JS SDK writes back unchanged.
func published() []*pb.CloudEvent {
	ts := func(s string) *pb.CloudEventAttributeValue {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
	}
	str := func(s string) *pb.CloudEventAttributeValue {
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
	}
	event := func(id, contentType string) *pb.CloudEvent {
		return &pb.CloudEvent{
			Id: id, Source: "/shop/polyglot", SpecVersion: "1.0", Type: "com.example.order.created",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				"datacontenttype": str(contentType),
				"subject":         str("eu-42 café \"vip\" 100%"),
				"time":            ts("2026-12-06T10:11:12.345Z"),
				"dataschema":      {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "https://example.com/schemas/order.json"}},
				"tenant":          str("acme"),
				"count":           {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: -42}},
				"flag":            {Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}},
				"blob":            {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte{0, 1, 2, 0xff}}},
				"ref":             {Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: "/orders/42"}},
				"at":              ts("2024-01-02T03:04:05Z"),
				"traceparent":     str("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
			},
		}
	}
	jsonEv := event("j1", "application/json")
	jsonEv.Data = &pb.CloudEvent_TextData{TextData: `{"total":150,"note":"héllo \"q\"","items":[1,2.5,-3]}`}
	binary := event("b1", "application/octet-stream")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	binary.Data = &pb.CloudEvent_BinaryData{BinaryData: all}
	text := event("t1", "text/plain; charset=utf-8")
	text.Data = &pb.CloudEvent_TextData{TextData: "line 1\nünï ✓ <&>"}
	retry := event("r1", "application/json")
	retry.Data = &pb.CloudEvent_TextData{TextData: fmt.Sprintf(`{"retry_ms":%d}`, retryMS)}
	return []*pb.CloudEvent{jsonEv, binary, text, retry}
}

func TestNodeFunction(t *testing.T) {
	d := npmBuild(t, "node-function")
	node := tool(t, "node", "Node.js 20 or later")
	t.Run("unary", func(t *testing.T) {
		checkFunction(t, start(t, d, nil, true, node, "dist/function.js", "--listen", "127.0.0.1:0"), "/examples/node-function", false)
	})
	t.Run("stream", func(t *testing.T) {
		checkFunction(t, start(t, d, nil, true, node, "dist/function.js", "--listen", "127.0.0.1:0", "--stream"), "/examples/node-function", true)
	})
}

func TestPythonFunction(t *testing.T) {
	py := python(t)
	tool(t, "protoc", "apt-get install protobuf-compiler libprotobuf-dev")
	d := dir("python-function")
	run(t, time.Minute, d, nil, "sh", "gen.sh")
	env := []string{"PYTHONDONTWRITEBYTECODE=1"}
	checkFunction(t, start(t, d, env, true, py, "function.py", "--listen", "127.0.0.1:0"), "/examples/python-function", false)
}

// checkFunction runs the published events through an example function p
// (whose replies come from replySource): the function sees each event with
// its attributes and data intact, the retry it asks for (OUTCOME_RETRY with
// retry_after) is honoured, and its reply events are published. With
// stream, the function serves InvokeStream and Switchyard uses it; without,
// Switchyard finds it serves only Invoke.
func checkFunction(t *testing.T, p *proc, replySource string, stream bool) {
	e := startServer(t)
	replies, replyAddr := goFunction(t, nil)
	e.apply(t, fmt.Sprintf(`
name: orders
filter: {attributes: {type: com.example.order.created}}
target: {grpc: "%s"}
delivery: {initial_backoff: 1ms, max_backoff: 1m}
---
name: handled
filter: {attributes: {type: com.example.order.created.handled}}
target: {grpc: "%s"}
`, p.addr, replyAddr))
	evs := published()
	for _, ev := range evs {
		_, err := e.client.Events().Publish(context.Background(), &switchyardv1.PublishRequest{Event: ev})
		require.NoError(t, err)
	}

	lines := p.lines(t, func(ls []lineOf) bool { return len(ls) >= len(evs)+1 }) // r1 twice
	byID := map[string][]lineOf{}
	for _, l := range lines {
		byID[l.ID] = append(byID[l.ID], l)
	}
	for _, want := range evs {
		ls := byID[want.GetId()]
		if want.GetId() == "r1" {
			require.Len(t, ls, 2, "r1 is attempted twice")
			require.Equal(t, []int{1, 2}, []int{ls[0].Attempt, ls[1].Attempt})
			gap := ls[1].ReceivedMS - ls[0].ReceivedMS
			require.GreaterOrEqual(t, gap, int64(retryMS), "the second attempt came %d ms after the first: retry_after not honoured", gap)
			if stream {
				// The connection is up by then: the attempt is a stream call
				// (the first attempts may go unary while it is being made).
				require.Equal(t, "stream", ls[1].Via)
			}
		} else {
			require.Len(t, ls, 1, "%s is attempted once", want.GetId())
		}
		for _, l := range ls {
			if !stream {
				require.Equal(t, "unary", l.Via)
			}
			require.Equal(t, "orders", l.Trigger)
			require.Zero(t, l.Round)
			require.Equal(t, "/shop/polyglot "+want.GetId(), l.IdempotencyKey)
			_, err := time.Parse(time.RFC3339Nano, l.Deadline)
			require.NoError(t, err, "deadline %q", l.Deadline)
			got, err := cloudevent.DecodeStructured(l.Event)
			require.NoError(t, err, "%s", l.Event)
			requireSameEvent(t, want, got)
		}
	}

	for _, want := range evs {
		reply, infos := replies.wait(t, want.GetId()+".handled")
		require.Equal(t, want.GetType()+".handled", reply.Type())
		require.Equal(t, replySource, reply.Source())
		require.Equal(t, "handled", infos[0].Trigger)
		subject, _ := cloudevent.Attribute(want, "subject")
		require.Equal(t, subject, reply.Subject())
		schema, _ := cloudevent.Attribute(want, "dataschema")
		require.Equal(t, schema, reply.DataSchema())
		contentType, _ := cloudevent.Attribute(want, "datacontenttype")
		require.Equal(t, contentType, reply.DataContentType())
		require.Equal(t, cloudevent.Data(want), reply.Data(), "%s: the reply's data", want.GetId())
		exts := map[string]string{}
		for name, v := range reply.Extensions() {
			s, err := types.Format(v)
			require.NoError(t, err)
			exts[name] = s
		}
		wantExts := map[string]string{"switchyardhops": "1"}
		for name, v := range want.GetAttributes() {
			if !slices.Contains([]string{"datacontenttype", "subject", "time", "dataschema"}, name) {
				wantExts[name], _ = cloudevent.AttributeValueString(v)
			}
		}
		require.Equal(t, wantExts, exts, "%s: the reply's extensions, as canonical strings", want.GetId())
	}

	// The functions answer OUTCOME_ACK explicitly. One serving only Invoke
	// was found out (and is delivered with unary calls).
	unaryOnly := func(m string) bool { return strings.Contains(m, "does not serve InvokeStream") }
	for _, msg := range e.logs.messages(t) {
		require.False(t, strings.HasPrefix(msg, "function answered without an outcome"), msg)
		require.False(t, stream && unaryOnly(msg), msg)
	}
	if !stream {
		testenv.Eventually(t, 10*time.Second, func() bool { return slices.ContainsFunc(e.logs.messages(t), unaryOnly) },
			"the log line saying the function serves only unary Invoke")
	}
}

// requireSameEvent checks that got, an event as a function printed it, is
// want: the same attributes in canonical string form (the JSON format
// keeps no attribute types beyond strings, integers and booleans) and the
// same data (the same JSON value, for JSON).
func requireSameEvent(t *testing.T, want, got *pb.CloudEvent) {
	t.Helper()
	require.Equal(t, want.GetId(), got.GetId())
	require.Equal(t, want.GetSource(), got.GetSource())
	require.Equal(t, want.GetType(), got.GetType())
	require.Equal(t, want.GetSpecVersion(), got.GetSpecVersion())
	canonical := func(ev *pb.CloudEvent) map[string]string {
		m := map[string]string{}
		for name, v := range ev.GetAttributes() {
			m[name], _ = cloudevent.AttributeValueString(v)
		}
		return m
	}
	require.Equal(t, canonical(want), canonical(got), "%s: attributes", want.GetId())
	ct, _ := cloudevent.Attribute(want, "datacontenttype")
	if strings.HasPrefix(ct, "application/json") {
		require.JSONEq(t, string(cloudevent.Data(want)), string(cloudevent.Data(got)), "%s: data", want.GetId())
	} else {
		require.Equal(t, cloudevent.Data(want), cloudevent.Data(got), "%s: data", want.GetId())
	}
}
