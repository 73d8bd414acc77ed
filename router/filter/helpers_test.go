package filter

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// evOpt modifies a test event.
type evOpt func(*pb.CloudEvent)

// testEvent returns a valid event (type com.example.order.created, source
// /shop/eu, no optional attribute, no data) with opts applied.
func testEvent(opts ...evOpt) *pb.CloudEvent {
	ev := &pb.CloudEvent{
		Id:          "e-1",
		Source:      "/shop/eu",
		SpecVersion: "1.0",
		Type:        "com.example.order.created",
	}
	for _, o := range opts {
		o(ev)
	}
	return ev
}

func withType(t string) evOpt   { return func(ev *pb.CloudEvent) { ev.Type = t } }
func withSource(s string) evOpt { return func(ev *pb.CloudEvent) { ev.Source = s } }

// withAttr sets an optional or extension attribute.
func withAttr(name string, v *pb.CloudEventAttributeValue) evOpt {
	return func(ev *pb.CloudEvent) {
		if ev.Attributes == nil {
			ev.Attributes = map[string]*pb.CloudEventAttributeValue{}
		}
		ev.Attributes[name] = v
	}
}

// withText sets text_data and, when ct is not empty, datacontenttype.
func withText(ct, data string) evOpt {
	return func(ev *pb.CloudEvent) {
		ev.Data = &pb.CloudEvent_TextData{TextData: data}
		if ct != "" {
			withAttr("datacontenttype", ceString(ct))(ev)
		}
	}
}

// withBinary sets binary_data and, when ct is not empty, datacontenttype.
func withBinary(ct string, data []byte) evOpt {
	return func(ev *pb.CloudEvent) {
		ev.Data = &pb.CloudEvent_BinaryData{BinaryData: data}
		if ct != "" {
			withAttr("datacontenttype", ceString(ct))(ev)
		}
	}
}

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func ceInt(i int32) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: i}}
}

func ceBool(b bool) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: b}}
}

func ceBytes(b []byte) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: b}}
}

func ceURI(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: s}}
}

func ceURIRef(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: s}}
}

func ceTime(t time.Time) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}}
}

// matchCase is one row of a match table.
type matchCase struct {
	spec Spec
	ev   *pb.CloudEvent
	want bool
}

// runMatchTable compiles each spec and checks its verdict on its event,
// through a fresh Input and through a reused (Reset) one.
func runMatchTable(t *testing.T, cases map[string]matchCase) {
	t.Helper()
	reused := &Input{}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Compile(tc.spec)
			require.NoError(t, err)
			require.Equal(t, tc.want, f.Match(NewInput(tc.ev)), "fresh Input")
			reused.Reset(tc.ev)
			require.Equal(t, tc.want, f.Match(reused), "reused Input")
		})
	}
}

func mustCompile(t testing.TB, s Spec) Filter {
	t.Helper()
	f, err := Compile(s)
	require.NoError(t, err)
	return f
}
