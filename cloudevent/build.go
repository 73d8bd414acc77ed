package cloudevent

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Helpers for connectors that build events from a transport's binary-mode
// binding or wrap foreign payloads.

// SetAttribute sets one context attribute from its string form, as binary
// bindings carry them: id, source, specversion and type set the fields; time
// becomes a timestamp (a value that is not RFC 3339 stays a string, which
// Validate refuses); dataschema a URI; everything else a string.
func SetAttribute(ev *pb.CloudEvent, name, value string) {
	switch name {
	case AttrID:
		ev.Id = value
	case AttrSource:
		ev.Source = value
	case AttrSpecVersion:
		ev.SpecVersion = value
	case AttrType:
		ev.Type = value
	case AttrTime:
		t, err := time.Parse(time.RFC3339Nano, value)
		if err != nil {
			SetAttributeValue(ev, name, StringValue(value))
			return
		}
		SetAttributeValue(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}})
	case AttrDataSchema:
		SetAttributeValue(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: value}})
	default:
		SetAttributeValue(ev, name, StringValue(value))
	}
}

// SetAttributeValue sets an optional or extension attribute.
func SetAttributeValue(ev *pb.CloudEvent, name string, v *pb.CloudEventAttributeValue) {
	if ev.Attributes == nil {
		ev.Attributes = map[string]*pb.CloudEventAttributeValue{}
	}
	ev.Attributes[name] = v
}

// StringValue is a string attribute value.
func StringValue(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

// SetData stores a payload byte for byte: as text_data when it is valid
// UTF-8 and its content type is text (text/*, JSON, XML) or unknown, else as
// binary_data. An empty payload is no data.
func SetData(ev *pb.CloudEvent, contentType string, payload []byte) {
	switch {
	case len(payload) == 0:
	case (contentType == "" || IsTextMediaType(contentType)) && utf8.Valid(payload):
		ev.Data = &pb.CloudEvent_TextData{TextData: string(payload)}
	default:
		ev.Data = &pb.CloudEvent_BinaryData{BinaryData: append([]byte(nil), payload...)}
	}
}

// SniffContentType names the media type of a payload that declares none:
// application/json, text/plain; charset=utf-8 or application/octet-stream.
func SniffContentType(b []byte) string {
	switch {
	case json.Valid(b):
		return "application/json"
	case utf8.Valid(b):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// IsTextMediaType reports whether a content type is textual: text/*, JSON
// (*/json, */*+json) or XML (*/xml, */*+xml). Parameters are ignored.
func IsTextMediaType(ct string) bool {
	t, _, _ := strings.Cut(ct, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.HasPrefix(t, "text/") || strings.HasSuffix(t, "/json") || strings.HasSuffix(t, "+json") ||
		strings.HasSuffix(t, "/xml") || strings.HasSuffix(t, "+xml")
}

// ValidString reports whether s can be the value of a required or string
// attribute (id, type, subject…): non-empty, valid UTF-8, no control
// characters or Unicode noncharacters. Connectors use it to choose between
// a value taken from a message and their fallback.
func ValidString(s string) bool { return s != "" && checkString(s) == "" }

// ValidMediaType reports whether ct can be datacontenttype: an RFC 2046
// media type with optional parameters.
func ValidMediaType(ct string) bool {
	_, _, ok := parseMediaType(ct)
	return ct != "" && ok
}
