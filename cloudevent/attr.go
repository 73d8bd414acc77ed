package cloudevent

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// Names of the CloudEvents 1.0 context attributes that the protobuf format
// keeps outside the attributes map (id, source, specversion, type) and of the
// optional core attributes kept inside it.
const (
	AttrID              = "id"
	AttrSource          = "source"
	AttrSpecVersion     = "specversion"
	AttrType            = "type"
	AttrDataContentType = "datacontenttype"
	AttrDataSchema      = "dataschema"
	AttrSubject         = "subject"
	AttrTime            = "time"
)

// Attribute returns the canonical string form (CloudEvents 1.0 type system,
// "String encoding" column) of the named context attribute, core or
// extension, and whether the event has it. It never allocates for the four
// required attributes and for string-typed optional attributes.
func Attribute(ev *pb.CloudEvent, name string) (string, bool) {
	switch name {
	case AttrID:
		return ev.GetId(), ev.GetId() != ""
	case AttrSource:
		return ev.GetSource(), ev.GetSource() != ""
	case AttrSpecVersion:
		return ev.GetSpecVersion(), ev.GetSpecVersion() != ""
	case AttrType:
		return ev.GetType(), ev.GetType() != ""
	}
	v, ok := ev.GetAttributes()[name]
	if !ok || v == nil {
		return "", false
	}
	return AttributeValueString(v)
}

// AttributeValueString renders one attribute value in its canonical string
// encoding. The boolean is false for a value with no variant set.
func AttributeValueString(v *pb.CloudEventAttributeValue) (string, bool) {
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeString:
		return a.CeString, true
	case *pb.CloudEventAttributeValue_CeUri:
		return a.CeUri, true
	case *pb.CloudEventAttributeValue_CeUriRef:
		return a.CeUriRef, true
	case *pb.CloudEventAttributeValue_CeBoolean:
		return strconv.FormatBool(a.CeBoolean), true
	case *pb.CloudEventAttributeValue_CeInteger:
		return strconv.FormatInt(int64(a.CeInteger), 10), true
	case *pb.CloudEventAttributeValue_CeBytes:
		return base64.StdEncoding.EncodeToString(a.CeBytes), true
	case *pb.CloudEventAttributeValue_CeTimestamp:
		if a.CeTimestamp == nil {
			return "", false
		}
		return a.CeTimestamp.AsTime().UTC().Format(time.RFC3339Nano), true
	}
	return "", false
}

// Data returns the event's data as bytes, exactly as it was received
// (text_data and binary_data), or the serialized Any value for proto_data.
// It returns nil when the event has no data.
func Data(ev *pb.CloudEvent) []byte {
	switch d := ev.GetData().(type) {
	case *pb.CloudEvent_BinaryData:
		return d.BinaryData
	case *pb.CloudEvent_TextData:
		return []byte(d.TextData)
	case *pb.CloudEvent_ProtoData:
		if d.ProtoData == nil {
			return nil
		}
		return d.ProtoData.GetValue()
	}
	return nil
}
