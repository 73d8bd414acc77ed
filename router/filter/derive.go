package filter

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// This file computes the values an Input derives from its event.

// isCoreOptional reports whether name is one of the optional core attributes
// that the protobuf format keeps in its attributes map next to extensions.
func isCoreOptional(name string) bool {
	switch name {
	case cloudevent.AttrDataContentType, cloudevent.AttrDataSchema,
		cloudevent.AttrSubject, cloudevent.AttrTime:
		return true
	}
	return false
}

// decodeData returns the event data as the CEL variable `data`:
//   - nil (CEL null) when the event has no data;
//   - the JSON-decoded value (maps, lists, float64 numbers, strings, bools,
//     nil) when the datacontenttype is a JSON media type, or is absent and
//     the data is valid JSON;
//   - otherwise a string for text_data, or for binary data whose
//     datacontenttype is text/* and which is valid UTF-8;
//   - otherwise the bytes (binary_data, or the serialized value of
//     proto_data).
//
// Data declared as JSON that does not parse falls through to the string or
// bytes forms.
func decodeData(ev *pb.CloudEvent) any {
	if ev.GetData() == nil {
		return nil
	}
	raw := cloudevent.Data(ev)
	ct, hasCT := ev.GetAttributes()[cloudevent.AttrDataContentType], false
	var mediaType string
	if ct != nil {
		mediaType, hasCT = cloudevent.AttributeValueString(ct)
		mediaType = normalizeMediaType(mediaType)
	}
	_, isProto := ev.GetData().(*pb.CloudEvent_ProtoData)
	if !isProto && (!hasCT || isJSONMediaType(mediaType)) {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			return v
		}
	}
	if t, ok := ev.GetData().(*pb.CloudEvent_TextData); ok {
		return t.TextData
	}
	if hasCT && strings.HasPrefix(mediaType, "text/") && utf8.Valid(raw) {
		return string(raw)
	}
	if raw == nil {
		return []byte{}
	}
	return raw
}

// normalizeMediaType returns the media type without parameters, trimmed and
// lower-cased.
func normalizeMediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isJSONMediaType reports whether a normalized media type denotes JSON.
func isJSONMediaType(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// fillAttributes stores every attribute of ev, core and extension, in its
// canonical string form into m.
func fillAttributes(m map[string]string, ev *pb.CloudEvent) {
	for _, name := range [...]string{cloudevent.AttrID, cloudevent.AttrSource, cloudevent.AttrSpecVersion, cloudevent.AttrType} {
		if v, ok := cloudevent.Attribute(ev, name); ok {
			m[name] = v
		}
	}
	for name, v := range ev.GetAttributes() {
		if s, ok := cloudevent.AttributeValueString(v); ok {
			m[name] = s
		}
	}
}

// fillExtensions stores the extension attributes of ev into m with CEL-friendly
// typed values: string (String, URI, URI-reference), bool, int64, []byte and
// time.Time.
func fillExtensions(m map[string]any, ev *pb.CloudEvent) {
	for name, v := range ev.GetAttributes() {
		if isCoreOptional(name) {
			continue
		}
		if tv, ok := typedValue(v); ok {
			m[name] = tv
		}
	}
}

// typedValue returns the Go value of an attribute value, or false when no
// variant is set.
func typedValue(v *pb.CloudEventAttributeValue) (any, bool) {
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeString:
		return a.CeString, true
	case *pb.CloudEventAttributeValue_CeUri:
		return a.CeUri, true
	case *pb.CloudEventAttributeValue_CeUriRef:
		return a.CeUriRef, true
	case *pb.CloudEventAttributeValue_CeBoolean:
		return a.CeBoolean, true
	case *pb.CloudEventAttributeValue_CeInteger:
		return int64(a.CeInteger), true
	case *pb.CloudEventAttributeValue_CeBytes:
		if a.CeBytes == nil {
			return []byte{}, true
		}
		return a.CeBytes, true
	case *pb.CloudEventAttributeValue_CeTimestamp:
		if a.CeTimestamp == nil {
			return nil, false
		}
		return a.CeTimestamp.AsTime().UTC(), true
	}
	return nil, false
}

// epoch is the zero value of google.protobuf.Timestamp.
var epoch = time.Unix(0, 0).UTC()

// eventTime returns the time attribute of ev, or epoch when it has none (or
// one that is not a timestamp).
func eventTime(ev *pb.CloudEvent) time.Time {
	if t, ok := attrTime(ev.GetAttributes()[cloudevent.AttrTime]); ok {
		return t
	}
	return epoch
}

// attrTime returns the time held by a Timestamp attribute value, or by a
// String one in RFC 3339 form.
func attrTime(v *pb.CloudEventAttributeValue) (time.Time, bool) {
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeTimestamp:
		if a.CeTimestamp != nil && a.CeTimestamp.IsValid() {
			return a.CeTimestamp.AsTime().UTC(), true
		}
	case *pb.CloudEventAttributeValue_CeString:
		if t, err := time.Parse(time.RFC3339Nano, a.CeString); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// toSDKEvent returns the context attributes of ev as an sdk-go event, which
// is what CESQL evaluates against. The data is left out: CESQL cannot read
// it.
//
// format.FromProto is not used: it also converts (and for text data
// re-encodes) the data, panics on a proto_data field holding no Any, and
// parses source and dataschema as URLs, which can change their string form.
// Here every attribute keeps exactly the canonical string form the
// attribute filters see; URI attributes go in as opaque URLs, whose
// String() returns the text unchanged.
func toSDKEvent(ev *pb.CloudEvent) *event.Event {
	ctx := &event.EventContextV1{
		ID:     ev.GetId(),
		Source: types.URIRef{URL: url.URL{Opaque: ev.GetSource()}},
		Type:   ev.GetType(),
	}
	for name, v := range ev.GetAttributes() {
		switch name {
		case cloudevent.AttrDataContentType:
			if s, ok := cloudevent.AttributeValueString(v); ok {
				ctx.DataContentType = &s
			}
		case cloudevent.AttrSubject:
			if s, ok := cloudevent.AttributeValueString(v); ok {
				ctx.Subject = &s
			}
		case cloudevent.AttrDataSchema:
			if s, ok := cloudevent.AttributeValueString(v); ok {
				ctx.DataSchema = &types.URI{URL: url.URL{Opaque: s}}
			}
		case cloudevent.AttrTime:
			if t, ok := attrTime(v); ok {
				ctx.Time = &types.Timestamp{Time: t}
			}
		default:
			tv, ok := typedValue(v)
			if !ok {
				continue
			}
			// CESQL's integer type is 32-bit, like CloudEvents' Integer.
			if i, isInt := tv.(int64); isInt {
				tv = int32(i)
			}
			if ctx.Extensions == nil {
				ctx.Extensions = make(map[string]any, len(ev.GetAttributes()))
			}
			ctx.Extensions[name] = tv
		}
	}
	return &event.Event{Context: ctx}
}
