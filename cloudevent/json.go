package cloudevent

import (
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// Media types of the JSON event format (structured mode) and of the JSON
// batch format.
const (
	MediaTypeStructuredJSON = "application/cloudevents+json"
	MediaTypeBatchJSON      = "application/cloudevents-batch+json"
)

// JSON member names that are not context attributes.
const (
	memberData       = "data"
	memberDataBase64 = "data_base64"
)

// DecodeStructured decodes one event in the CloudEvents JSON event format
// (application/cloudevents+json) and validates it (see Validate).
//
// Decoding is strict: the input must be exactly one JSON object (surrounding
// whitespace allowed) in valid UTF-8; duplicate member names are refused;
// string-typed attributes must be JSON strings, and extension values JSON
// strings (ce_string), booleans (ce_boolean), integers in the 32-bit range
// (ce_integer) or null; null means "absent" for every attribute; time
// becomes a ce_timestamp and dataschema a ce_uri; datacontenttype is kept
// as sent and never defaulted.
//
// Data: "data" and "data_base64" are mutually exclusive. data_base64 must be
// standard base64 and becomes binary_data. When datacontenttype is absent or
// declares JSON (*/json, */*+json, any parameters) the data value is stored
// in text_data as the exact bytes of the JSON value as sent (so a JSON
// string keeps its quotes, and "data": null is the 4-byte text "null");
// otherwise a JSON string is unescaped into text_data and any other JSON
// value is stored as its raw text. An empty payload is stored as no data.
//
// The result never aliases b. Errors are *Error values.
func DecodeStructured(b []byte) (*pb.CloudEvent, error) {
	s := scanner{b: b}
	s.ws()
	ev, e := s.decodeEvent()
	if e != nil {
		return nil, e
	}
	s.ws()
	if s.i != len(b) {
		return nil, s.unexpected("after the event object")
	}
	if e := validate(ev); e != nil {
		return nil, e
	}
	return ev, nil
}

// MaxBatchErrors is the number of bad events DecodeBatch reports
// individually. A batch with more bad events gets one more *Error (Kind
// ErrMalformed, Index -1) saying that the rest was not checked, which bounds
// the memory a hostile batch of tiny bad events can cost.
const MaxBatchErrors = 1000

// DecodeBatch decodes a batch in the CloudEvents JSON batch format
// (application/cloudevents-batch+json): a JSON array of events, each decoded
// as DecodeStructured does and validated. An empty array is a valid batch
// and yields an empty, non-nil slice.
//
// maxEventBytes bounds the JSON text of each event; zero or negative means
// DefaultMaxEventBytes.
//
// Invalid JSON anywhere aborts with one *Error (whose Index names the
// event being scanned, if any). Otherwise every bad event is reported (up to
// MaxBatchErrors): the error is an errors.Join of one *Error per bad event,
// each with its Index, and no events are returned.
func DecodeBatch(b []byte, maxEventBytes int) ([]*pb.CloudEvent, error) {
	return decodeBatch(b, maxEventBytes, 0)
}

// decodeBatch is DecodeBatch that also refuses, with one ErrTooLarge
// *Error, a batch of more than maxEvents events (no bound when zero or
// negative): it stops at the first element past the bound, before decoding
// it, so that the count is enforced while decoding rather than after a
// whole batch of tiny events has been decoded.
func decodeBatch(b []byte, maxEventBytes, maxEvents int) ([]*pb.CloudEvent, error) {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	s := scanner{b: b}
	s.ws()
	if s.i >= len(b) {
		return nil, newError(ErrMalformed, "", "empty input, want a JSON array")
	}
	if b[s.i] != '[' {
		if k := s.kindAt(); k != "invalid JSON" {
			return nil, newError(ErrMalformed, "", "a batch must be a JSON array, got "+k)
		}
		return nil, s.unexpected("where a JSON array was expected")
	}
	s.i++
	s.ws()
	evs := []*pb.CloudEvent{}
	var errs []error
	if s.i < len(b) && b[s.i] == ']' {
		s.i++
	} else {
		for idx := 0; ; idx++ {
			if maxEvents > 0 && idx == maxEvents {
				return nil, newError(ErrTooLarge, "", "a batch holds at most "+strconv.Itoa(maxEvents)+
					" events; this one has more")
			}
			s.ws()
			start := s.i
			if e := s.skipValue(); e != nil {
				e.Index = idx
				return nil, e
			}
			raw := b[start:s.i]
			if len(errs) == MaxBatchErrors {
				// Enough to act on; stop spending memory on a hostile batch.
				errs = append(errs, newError(ErrMalformed, "", "more than "+strconv.Itoa(MaxBatchErrors)+
					" bad events; the rest of the batch was not checked"))
				return nil, errors.Join(errs...)
			}
			if len(raw) > maxEventBytes {
				errs = append(errs, &Error{Kind: ErrTooLarge, Index: idx,
					Detail: strconv.Itoa(len(raw)) + " bytes exceeds the limit of " + strconv.Itoa(maxEventBytes)})
			} else if ev, e := decodeOne(raw); e != nil {
				e.Index = idx
				errs = append(errs, e)
			} else {
				evs = append(evs, ev)
			}
			s.ws()
			if s.i < len(b) && b[s.i] == ',' {
				s.i++
				continue
			}
			if s.i < len(b) && b[s.i] == ']' {
				s.i++
				break
			}
			e := s.unexpected("after batch element")
			e.Index = idx
			return nil, e
		}
	}
	s.ws()
	if s.i != len(b) {
		return nil, s.unexpected("after the batch array")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return evs, nil
}

// decodeOne decodes and validates one event whose JSON text has already
// been checked by skipValue.
func decodeOne(raw []byte) (*pb.CloudEvent, *Error) {
	s := scanner{b: raw}
	ev, e := s.decodeEvent()
	if e != nil {
		return nil, e
	}
	if e := validate(ev); e != nil {
		return nil, e
	}
	return ev, nil
}

// Bits recording which well-known members an object has, for duplicate
// detection (also of members whose value is null).
const (
	seenID = 1 << iota
	seenSource
	seenSpecVersion
	seenType
	seenDataContentType
	seenDataSchema
	seenSubject
	seenTime
	seenData
	seenDataBase64
)

// decodeEvent decodes the JSON object at the current offset into an event
// (without validating it).
func (s *scanner) decodeEvent() (*pb.CloudEvent, *Error) {
	if s.i >= len(s.b) {
		return nil, newError(ErrMalformed, "", "empty input, want a JSON object")
	}
	if s.b[s.i] != '{' {
		if k := s.kindAt(); k != "invalid JSON" {
			return nil, newError(ErrMalformed, "", "an event must be a JSON object, got "+k)
		}
		return nil, s.unexpected("where a JSON object was expected")
	}
	s.i++
	ev := &pb.CloudEvent{}
	var (
		seen       uint16
		nullExts   map[string]struct{} // extensions seen with a null value
		ct         string
		hasCT      bool
		data       []byte // raw JSON value of "data"
		dataString bool   // data is a JSON string
		b64        []byte // raw content of the "data_base64" string
		b64Esc     bool
		hasB64     bool
	)
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return ev, nil
	}
	for {
		s.ws()
		keyRaw, keyEsc, e := s.scanString()
		if e != nil {
			return nil, e
		}
		key := keyRaw
		if keyEsc {
			var ok bool
			key, ok = unescapeString(nil, keyRaw)
			if !ok {
				return nil, newError(ErrInvalidAttribute, string(keyRaw), "invalid name: unpaired UTF-16 surrogate")
			}
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, s.unexpected("after object member name")
		}
		s.i++
		s.ws()

		var bit uint16
		switch string(key) {
		case AttrID:
			bit = seenID
		case AttrSource:
			bit = seenSource
		case AttrSpecVersion:
			bit = seenSpecVersion
		case AttrType:
			bit = seenType
		case AttrDataContentType:
			bit = seenDataContentType
		case AttrDataSchema:
			bit = seenDataSchema
		case AttrSubject:
			bit = seenSubject
		case AttrTime:
			bit = seenTime
		case memberData:
			bit = seenData
		case memberDataBase64:
			bit = seenDataBase64
		}
		if bit != 0 {
			if seen&bit != 0 {
				return nil, newError(ErrMalformed, string(key), "duplicate member in JSON object")
			}
			seen |= bit
		}

		switch bit {
		case seenID, seenSource, seenSpecVersion, seenType, seenDataContentType, seenDataSchema, seenSubject, seenTime:
			name := attrName(bit)
			v, present, e := s.attrString(name)
			if e != nil {
				return nil, e
			}
			if !present {
				break
			}
			switch bit {
			case seenID, seenSource, seenSpecVersion, seenType, seenSubject, seenDataContentType, seenDataSchema:
				if v == "" {
					if bit == seenDataSchema {
						return nil, newError(ErrInvalidAttribute, name, "must be a non-empty URI")
					}
					return nil, newError(ErrInvalidAttribute, name, "must be a non-empty string")
				}
			}
			switch bit {
			case seenID:
				ev.Id = v
			case seenSource:
				ev.Source = v
			case seenSpecVersion:
				ev.SpecVersion = v
			case seenType:
				ev.Type = v
			case seenDataContentType:
				ct, hasCT = v, true
				setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: v}})
			case seenDataSchema:
				setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: v}})
			case seenSubject:
				setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: v}})
			case seenTime:
				ts, ok := parseTimestamp(v)
				if !ok {
					return nil, newError(ErrInvalidAttribute, name, "not an RFC 3339 timestamp: "+quoteDetail(v))
				}
				setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: ts}})
			}
		case seenData:
			start := s.i
			dataString = s.i < len(s.b) && s.b[s.i] == '"'
			if e := s.skipValue(); e != nil {
				return nil, e
			}
			data = s.b[start:s.i]
		case seenDataBase64:
			switch s.kindAt() {
			case "null":
				if e := s.scanLiteral(); e != nil {
					return nil, e
				}
			case "string":
				raw, esc, e := s.scanString()
				if e != nil {
					return nil, e
				}
				b64, b64Esc, hasB64 = raw, esc, true
			default:
				k := s.kindAt()
				if e := s.skipValue(); e != nil {
					return nil, e
				}
				return nil, newError(ErrMalformed, memberDataBase64, "must be a JSON string, got "+k)
			}
		default: // extension attribute
			name := string(key)
			if msg := checkName(name); msg != "" {
				return nil, newError(ErrInvalidAttribute, name, msg)
			}
			if _, dup := ev.Attributes[name]; dup {
				return nil, newError(ErrMalformed, name, "duplicate member in JSON object")
			}
			if _, dup := nullExts[name]; dup {
				return nil, newError(ErrMalformed, name, "duplicate member in JSON object")
			}
			v, e := s.extensionValue(name)
			if e != nil {
				return nil, e
			}
			if v == nil {
				if nullExts == nil {
					nullExts = make(map[string]struct{})
				}
				nullExts[name] = struct{}{}
			} else {
				setAttr(ev, name, v)
			}
		}

		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			break
		}
		return nil, s.unexpected("after object member value")
	}

	if data != nil && hasB64 {
		return nil, newError(ErrMalformed, "", `both "data" and "data_base64" are present`)
	}
	switch {
	case data != nil:
		var text string
		switch {
		case !hasCT || isJSONMediaType(ct):
			text = string(data)
		case dataString:
			raw := data[1 : len(data)-1]
			if bytesContain(raw, '\\') {
				dec, ok := unescapeString(make([]byte, 0, len(raw)), raw)
				if !ok {
					return nil, newError(ErrMalformed, memberData, "string holds an unpaired UTF-16 surrogate")
				}
				text = string(dec)
			} else {
				text = string(raw)
			}
		default:
			text = string(data)
		}
		if text != "" {
			ev.Data = &pb.CloudEvent_TextData{TextData: text}
		}
	case hasB64:
		raw := b64
		if b64Esc {
			var ok bool
			raw, ok = unescapeString(nil, b64)
			if !ok {
				return nil, newError(ErrMalformed, memberDataBase64, "invalid base64: unpaired UTF-16 surrogate")
			}
		}
		bin := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		n, err := base64.StdEncoding.Decode(bin, raw)
		if err != nil {
			return nil, newError(ErrMalformed, memberDataBase64, "invalid base64: "+err.Error())
		}
		if n > 0 {
			ev.Data = &pb.CloudEvent_BinaryData{BinaryData: bin[:n:n]}
		}
	}
	return ev, nil
}

// attrName maps a seen-bit of a string-typed attribute to its name.
func attrName(bit uint16) string {
	switch bit {
	case seenID:
		return AttrID
	case seenSource:
		return AttrSource
	case seenSpecVersion:
		return AttrSpecVersion
	case seenType:
		return AttrType
	case seenDataContentType:
		return AttrDataContentType
	case seenDataSchema:
		return AttrDataSchema
	case seenSubject:
		return AttrSubject
	}
	return AttrTime
}

func bytesContain(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// setAttr stores an optional or extension attribute.
func setAttr(ev *pb.CloudEvent, name string, v *pb.CloudEventAttributeValue) {
	if ev.Attributes == nil {
		ev.Attributes = make(map[string]*pb.CloudEventAttributeValue, 4)
	}
	ev.Attributes[name] = v
}

// attrString reads the value of a string-typed attribute: a JSON string
// (present) or null (absent); any other JSON type is an error naming the
// attribute.
func (s *scanner) attrString(name string) (v string, present bool, err *Error) {
	switch s.kindAt() {
	case "null":
		return "", false, s.scanLiteral()
	case "string":
		raw, esc, e := s.scanString()
		if e != nil {
			return "", false, e
		}
		if !esc {
			return string(raw), true, nil
		}
		dec, ok := unescapeString(make([]byte, 0, len(raw)), raw)
		if !ok {
			return "", false, newError(ErrInvalidAttribute, name, "contains an unpaired UTF-16 surrogate")
		}
		return string(dec), true, nil
	case "invalid JSON", "nothing":
		return "", false, s.unexpected("where a value was expected")
	}
	k := s.kindAt()
	if e := s.skipValue(); e != nil {
		return "", false, e
	}
	return "", false, newError(ErrInvalidAttribute, name, "must be a JSON string, got "+k)
}

// extensionValue reads the value of an extension attribute; nil means null.
func (s *scanner) extensionValue(name string) (*pb.CloudEventAttributeValue, *Error) {
	switch s.kindAt() {
	case "null":
		return nil, s.scanLiteral()
	case "string":
		v, _, e := s.attrString(name)
		if e != nil {
			return nil, e
		}
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: v}}, nil
	case "boolean":
		val := s.b[s.i] == 't'
		if e := s.scanLiteral(); e != nil {
			return nil, e
		}
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: val}}, nil
	case "number":
		start := s.i
		integer, e := s.scanNumber()
		if e != nil {
			return nil, e
		}
		text := s.b[start:s.i]
		if !integer {
			return nil, newError(ErrInvalidAttribute, name, "must be an integer, got "+quoteDetail(string(text)))
		}
		n, ok := parseInt32(text)
		if !ok {
			return nil, newError(ErrInvalidAttribute, name, "integer out of the 32-bit range: "+quoteDetail(string(text)))
		}
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: n}}, nil
	case "object", "array":
		k := s.kindAt()
		if e := s.skipValue(); e != nil {
			return nil, e
		}
		return nil, newError(ErrInvalidAttribute, name, "must be a string, boolean, integer or null, got "+k)
	}
	return nil, s.unexpected("where a value was expected")
}

// parseInt32 parses a JSON integer (grammar already checked) into int32.
func parseInt32(b []byte) (int32, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if n < -1<<31 || n > 1<<31-1 {
		return 0, false
	}
	return int32(n), true
}

// EncodeStructured renders a valid event in the JSON event format. Members
// come in a fixed order (specversion, id, source, type, then the other
// attributes by name, then data), without insignificant whitespace.
//
// Data: text_data is embedded as a raw JSON value when datacontenttype is
// absent or declares JSON and the text is exactly one JSON value (no
// surrounding whitespace); as a "data" string when datacontenttype declares
// another type; and as "data_base64" otherwise, so its bytes are never
// altered. binary_data and the serialized value of proto_data become
// "data_base64". For every event that DecodeStructured and DecodeBatch
// produce, DecodeStructured(EncodeStructured(ev)) equals ev; for those of
// ReadRequest too, except that JSON text with whitespace around the value
// (a binary-mode body as sent) comes back as binary_data: the JSON format
// has no member that keeps those bytes as text. The data bytes are always
// equal.
// Extension values of types the JSON format has no native type for
// (ce_uri, ce_uri_ref, ce_bytes, ce_timestamp) are written as their
// canonical strings and read back as ce_string.
//
// It returns the Validate error for an invalid event.
func EncodeStructured(ev *pb.CloudEvent) ([]byte, error) {
	if e := validate(ev); e != nil {
		return nil, e
	}
	return appendEvent(make([]byte, 0, estimateSize(ev)), ev), nil
}

// EncodeBatch renders valid events in the JSON batch format (an empty or nil
// slice gives "[]"). If any event is invalid it returns the ValidateBatch
// error listing all bad events.
func EncodeBatch(evs []*pb.CloudEvent) ([]byte, error) {
	if err := ValidateBatch(evs); err != nil {
		return nil, err
	}
	size := 2
	for _, ev := range evs {
		size += estimateSize(ev) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, '[')
	for i, ev := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, ev)
	}
	return append(b, ']'), nil
}

// estimateSize guesses the encoded size of an event, to size buffers.
func estimateSize(ev *pb.CloudEvent) int {
	n := 64 + len(ev.GetId()) + len(ev.GetSource()) + len(ev.GetType())
	for k, v := range ev.GetAttributes() {
		n += len(k) + 8 + len(v.GetCeString()) + len(v.GetCeUri()) + len(v.GetCeUriRef()) + 4*len(v.GetCeBytes())/3 + 32
	}
	switch d := ev.GetData().(type) {
	case *pb.CloudEvent_TextData:
		n += len(d.TextData) + len(d.TextData)/8 + 16
	case *pb.CloudEvent_BinaryData:
		n += base64.StdEncoding.EncodedLen(len(d.BinaryData)) + 16
	case *pb.CloudEvent_ProtoData:
		n += base64.StdEncoding.EncodedLen(len(d.ProtoData.GetValue())) + 16
	}
	return n
}

// appendEvent appends the JSON form of a validated event.
func appendEvent(b []byte, ev *pb.CloudEvent) []byte {
	b = append(b, `{"specversion":`...)
	b = appendJSONString(b, ev.GetSpecVersion())
	b = append(b, `,"id":`...)
	b = appendJSONString(b, ev.GetId())
	b = append(b, `,"source":`...)
	b = appendJSONString(b, ev.GetSource())
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.GetType())

	attrs := ev.GetAttributes()
	var namesBuf [16]string
	names := namesBuf[:0]
	for k := range attrs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b = append(b, ',')
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendAttrJSON(b, attrs[k])
	}

	ct, hasCT := Attribute(ev, AttrDataContentType)
	switch d := ev.GetData().(type) {
	case *pb.CloudEvent_TextData:
		t := d.TextData
		switch {
		case t == "":
		case !hasCT || isJSONMediaType(ct):
			if isJSONValue([]byte(t)) {
				b = append(b, `,"data":`...)
				b = append(b, t...)
			} else {
				b = appendBase64Member(b, []byte(t))
			}
		case utf8.ValidString(t):
			b = append(b, `,"data":`...)
			b = appendJSONString(b, t)
		default:
			b = appendBase64Member(b, []byte(t))
		}
	case *pb.CloudEvent_BinaryData:
		b = appendBase64Member(b, d.BinaryData)
	case *pb.CloudEvent_ProtoData:
		b = appendBase64Member(b, d.ProtoData.GetValue())
	}
	return append(b, '}')
}

// appendBase64Member appends a "data_base64" member (nothing for no bytes).
func appendBase64Member(b, data []byte) []byte {
	if len(data) == 0 {
		return b
	}
	b = append(b, `,"data_base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, data)
	return append(b, '"')
}

// appendAttrJSON appends an attribute value with its JSON type mapping.
func appendAttrJSON(b []byte, v *pb.CloudEventAttributeValue) []byte {
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeBoolean:
		return strconv.AppendBool(b, a.CeBoolean)
	case *pb.CloudEventAttributeValue_CeInteger:
		return strconv.AppendInt(b, int64(a.CeInteger), 10)
	case *pb.CloudEventAttributeValue_CeString:
		return appendJSONString(b, a.CeString)
	case *pb.CloudEventAttributeValue_CeUri:
		return appendJSONString(b, a.CeUri)
	case *pb.CloudEventAttributeValue_CeUriRef:
		return appendJSONString(b, a.CeUriRef)
	case *pb.CloudEventAttributeValue_CeBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, a.CeBytes)
		return append(b, '"')
	case *pb.CloudEventAttributeValue_CeTimestamp:
		b = append(b, '"')
		b = appendTimestamp(b, a.CeTimestamp)
		return append(b, '"')
	}
	return append(b, "null"...)
}
