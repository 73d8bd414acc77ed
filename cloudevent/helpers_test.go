package cloudevent

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Attribute value constructors for tests.
func strAttr(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func uriAttr(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: s}}
}

func uriRefAttr(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: s}}
}

func boolAttr(b bool) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: b}}
}

func intAttr(n int32) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: n}}
}

func bytesAttr(b []byte) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: b}}
}

func tsAttr(t *testing.T, s string) *pb.CloudEventAttributeValue {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(tm)}}
}

// minimalEvent returns a valid event with only the required attributes.
func minimalEvent(id string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "https://cloudevents.io", SpecVersion: "1.0", Type: "io.cloudevents.test"}
}

// withAttrs sets attributes on ev and returns it.
func withAttrs(ev *pb.CloudEvent, kv ...any) *pb.CloudEvent {
	if ev.Attributes == nil {
		ev.Attributes = map[string]*pb.CloudEventAttributeValue{}
	}
	for i := 0; i < len(kv); i += 2 {
		ev.Attributes[kv[i].(string)] = kv[i+1].(*pb.CloudEventAttributeValue)
	}
	return ev
}

func withText(ev *pb.CloudEvent, s string) *pb.CloudEvent {
	ev.Data = &pb.CloudEvent_TextData{TextData: s}
	return ev
}

func withBinary(ev *pb.CloudEvent, b []byte) *pb.CloudEvent {
	ev.Data = &pb.CloudEvent_BinaryData{BinaryData: b}
	return ev
}

// ceErrors flattens err (an *Error or an errors.Join of them) into its
// *Error values, failing the test if any part is not an *Error.
func ceErrors(t testing.TB, err error) []*Error {
	t.Helper()
	require.Error(t, err)
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	out := make([]*Error, 0, len(parts))
	for _, p := range parts {
		var e *Error
		require.Truef(t, errors.As(p, &e), "error %v (%T) is not a *cloudevent.Error", p, p)
		require.Truef(t, isSentinel(e.Kind), "error %v has Kind %v, not a sentinel", e, e.Kind)
		require.Truef(t, errors.Is(p, e.Kind), "errors.Is(%v, Kind) is false", p)
		out = append(out, e)
	}
	return out
}

func isSentinel(k error) bool {
	switch k {
	case ErrMalformed, ErrMissingAttribute, ErrInvalidAttribute, ErrUnsupportedMediaType, ErrTooLarge, ErrEmptyBatch:
		return true
	}
	return false
}

// wantErr describes an expected *Error.
type wantErr struct {
	kind  error
	attr  string
	index int
}

// requireErr checks that err is exactly one *Error matching w.
func requireErr(t testing.TB, err error, w wantErr) *Error {
	t.Helper()
	es := ceErrors(t, err)
	require.Lenf(t, es, 1, "want one error, got %v", err)
	e := es[0]
	require.Equalf(t, w.kind, e.Kind, "kind of %q", e.Error())
	require.Equalf(t, w.attr, e.Attribute, "attribute of %q", e.Error())
	require.Equalf(t, w.index, e.Index, "index of %q", e.Error())
	require.True(t, errors.Is(err, w.kind))
	require.NotEmpty(t, e.Error())
	return e
}

// requireEqualEvent compares events with proto.Equal, printing both.
func requireEqualEvent(t testing.TB, want, got *pb.CloudEvent) {
	t.Helper()
	require.Truef(t, proto.Equal(want, got), "events differ\nwant: %v\n got: %v", want, got)
}
