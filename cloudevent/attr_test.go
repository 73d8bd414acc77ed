package cloudevent

import (
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestAttribute(t *testing.T) {
	ev := withAttrs(baseEvent(),
		AttrTime, tsAttr(t, "2018-04-05T18:31:00.5+01:00"),
		AttrDataSchema, uriAttr("https://x/s"),
		"s", strAttr("v"), "b", boolAttr(true), "i", intAttr(-12), "by", bytesAttr([]byte("Ma")), "r", uriRefAttr("#f"),
		"none", &pb.CloudEventAttributeValue{}, "nilts", &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{}})
	want := map[string]string{
		AttrID: "1", AttrSource: "/src", AttrSpecVersion: "1.0", AttrType: "t",
		AttrTime: "2018-04-05T17:31:00.5Z", AttrDataSchema: "https://x/s",
		"s": "v", "b": "true", "i": "-12", "by": "TWE=", "r": "#f",
	}
	for name, w := range want {
		got, ok := Attribute(ev, name)
		require.True(t, ok, name)
		require.Equal(t, w, got, name)
	}
	for _, name := range []string{"missing", "none", "nilts", AttrSubject} {
		_, ok := Attribute(ev, name)
		require.False(t, ok, name)
	}
	_, ok := Attribute(&pb.CloudEvent{}, AttrID)
	require.False(t, ok)
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = Attribute(ev, "s"); _, _ = Attribute(ev, AttrID) }))
}

func TestData(t *testing.T) {
	require.Nil(t, Data(baseEvent()))
	require.Equal(t, []byte("x"), Data(withText(baseEvent(), "x")))
	require.Equal(t, []byte{1}, Data(withBinary(baseEvent(), []byte{1})))
	ev := baseEvent()
	ev.Data = &pb.CloudEvent_ProtoData{ProtoData: &anypb.Any{Value: []byte{2}}}
	require.Equal(t, []byte{2}, Data(ev))
	ev.Data = &pb.CloudEvent_ProtoData{}
	require.Nil(t, Data(ev))
}
