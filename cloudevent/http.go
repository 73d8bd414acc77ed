package cloudevent

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// Default limits applied by Limits.WithDefaults.
const (
	// DefaultMaxEventBytes bounds one event: the body of a binary or
	// structured request, and the JSON text of each event of a batch.
	DefaultMaxEventBytes = 1 << 20 // 1 MiB
	// DefaultMaxBatchBytes bounds the body of a batched request.
	DefaultMaxBatchBytes = 16 << 20 // 16 MiB
	// DefaultMaxBatchEvents bounds the events of a batched request (the
	// router's own bound on one publish, router.DefaultMaxBatchEvents).
	DefaultMaxBatchEvents = 1000
)

// Buffer sizes of readBody.
const (
	// initialBodyBuffer is the buffer a body of unknown or large declared
	// length starts with.
	initialBodyBuffer = 512
	// presizeMax: a body declared shorter gets a buffer of its declared
	// size at once, saving the regrowth of small events; the most a
	// client can make the server hold for a body it does not send.
	presizeMax = 4 << 10
)

// Limits bounds the size of what ReadRequest accepts. Zero (or negative)
// fields mean the defaults; see WithDefaults.
type Limits struct {
	// MaxEventBytes bounds the body of a binary-mode or structured-mode
	// request, and the JSON text of each event of a batch.
	MaxEventBytes int64
	// MaxBatchBytes bounds the body of a batched-mode request.
	MaxBatchBytes int64
	// MaxBatchEvents bounds the events of a batched-mode request; the
	// decoder stops at the first event past it, so a batch of many tiny
	// events is refused before it is decoded.
	MaxBatchEvents int
}

// WithDefaults returns l with every zero or negative field replaced by its
// default (DefaultMaxEventBytes, DefaultMaxBatchBytes,
// DefaultMaxBatchEvents).
func (l Limits) WithDefaults() Limits {
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxBatchBytes <= 0 {
		l.MaxBatchBytes = DefaultMaxBatchBytes
	}
	return l
}

// Mode is the HTTP content mode of a CloudEvents message.
type Mode int

// Content modes of the CloudEvents HTTP protocol binding.
const (
	// ModeUnknown is returned with an error when the content mode could not
	// be determined (an unsupported application/cloudevents* media type).
	ModeUnknown Mode = iota
	// ModeBinary: attributes in ce-* headers, data in the body.
	ModeBinary
	// ModeStructured: one event in the JSON event format in the body.
	ModeStructured
	// ModeBatch: a JSON batch of events in the body.
	ModeBatch
)

// String returns "binary", "structured", "batch" or "unknown".
func (m Mode) String() string {
	switch m {
	case ModeBinary:
		return "binary"
	case ModeStructured:
		return "structured"
	case ModeBatch:
		return "batch"
	}
	return "unknown"
}

// ReadRequest reads the CloudEvents carried by an HTTP request (CloudEvents
// HTTP protocol binding 1.0) and returns them validated, with the content
// mode it used. The mode is chosen from Content-Type:
//
//   - application/cloudevents+json (parameters allowed; a charset other than
//     UTF-8 is refused): structured mode, one event (DecodeStructured);
//   - application/cloudevents-batch+json: batched mode (DecodeBatch); an
//     empty batch ("[]") is valid, as the JSON format says, and returns an
//     empty, non-nil slice (a caller acknowledges it and stores nothing); a
//     batch holding more than MaxBatchEvents events fails with ErrTooLarge
//     as soon as the decoder reaches the first event past the limit;
//   - any other application/cloudevents* type: ErrUnsupportedMediaType;
//   - anything else, or no Content-Type: binary mode. Attributes come from
//     the ce-* headers (names case-insensitive; values unquoted and then
//     percent-decoded as the binding requires, and refused unless the
//     result is valid UTF-8; a repeated header is refused; ce-datacontenttype
//     is refused because the binding carries it in Content-Type). Content-Type
//     becomes datacontenttype; time becomes a ce_timestamp, dataschema a
//     ce_uri, every other attribute a ce_string. The body is the data, byte
//     for byte: with a JSON content type, a body that is one JSON value
//     (whitespace around it allowed and kept) goes to text_data; with a
//     text/* content type a UTF-8 body goes to text_data; every other body
//     goes to binary_data; an empty body means no data. Headers are checked
//     before the body is read, so a request that is not a CloudEvent (for
//     instance one without ce-specversion) fails with ErrMissingAttribute
//     without its body being read.
//
// Bodies over the limits fail with ErrTooLarge; at most limit+1 bytes are
// read (a declared Content-Length over the limit fails before reading), into
// a buffer that grows with the bytes received, never sized ahead of them
// from the declared Content-Length.
// ReadRequest does not close the body. Errors are *Error values, or for a
// batch an errors.Join of them.
func ReadRequest(r *http.Request, lim Limits) (events []*pb.CloudEvent, mode Mode, err error) {
	lim = lim.WithDefaults()
	var ct string
	if v := r.Header["Content-Type"]; len(v) > 0 {
		ct = strings.Trim(v[0], " \t")
	}
	mode, e := contentMode(ct)
	if e != nil {
		return nil, mode, e
	}
	switch mode {
	case ModeStructured:
		body, e := readBody(r, lim.MaxEventBytes)
		if e != nil {
			return nil, mode, e
		}
		if len(trimJSONSpace(body)) == 0 {
			return nil, mode, newError(ErrMalformed, "", "empty body")
		}
		ev, err := DecodeStructured(body)
		if err != nil {
			return nil, mode, err
		}
		return []*pb.CloudEvent{ev}, mode, nil
	case ModeBatch:
		body, e := readBody(r, lim.MaxBatchBytes)
		if e != nil {
			return nil, mode, e
		}
		if len(trimJSONSpace(body)) == 0 {
			return nil, mode, newError(ErrMalformed, "", "empty body")
		}
		maxEvent := lim.MaxEventBytes
		if maxEvent > int64(int(^uint(0)>>1)) {
			maxEvent = int64(int(^uint(0) >> 1))
		}
		evs, err := decodeBatch(body, int(maxEvent), lim.MaxBatchEvents)
		if err != nil {
			return nil, mode, err
		}
		return evs, mode, nil
	}
	ev, e := readBinary(r, ct, lim.MaxEventBytes)
	if e != nil {
		return nil, mode, e
	}
	return []*pb.CloudEvent{ev}, mode, nil
}

// contentMode picks the content mode from a Content-Type value.
func contentMode(ct string) (Mode, *Error) {
	const prefix = "application/cloudevents"
	if len(ct) < len(prefix) || !strings.EqualFold(ct[:len(prefix)], prefix) {
		return ModeBinary, nil
	}
	_, sub, ok := parseMediaType(ct)
	if !ok {
		return ModeUnknown, newError(ErrUnsupportedMediaType, "", "malformed media type "+quoteDetail(ct))
	}
	var mode Mode
	switch {
	case strings.EqualFold(sub, "cloudevents+json"):
		mode = ModeStructured
	case strings.EqualFold(sub, "cloudevents-batch+json"):
		mode = ModeBatch
	default:
		return ModeUnknown, newError(ErrUnsupportedMediaType, "", quoteDetail(ct)+": only the JSON event format is supported")
	}
	if cs, ok := mediaParam(ct, "charset"); ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return ModeUnknown, newError(ErrUnsupportedMediaType, "", "charset "+quoteDetail(cs)+": the JSON format requires UTF-8")
	}
	return mode, nil
}

// readBody reads a request body of at most limit bytes, as it arrives: the
// buffer grows (doubling) with the bytes received and never ahead of them
// from the declared Content-Length, which a client can send without the
// body it announces, to make the server hold memory for nothing. Only a
// body declared no larger than presizeMax gets its exact buffer at once.
func readBody(r *http.Request, limit int64) ([]byte, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength, limit)
	}
	size := int64(initialBodyBuffer)
	if r.ContentLength >= 0 && r.ContentLength < presizeMax {
		// One spare byte lets the final read see EOF without growing.
		size = r.ContentLength + 1
	}
	buf := make([]byte, 0, min(size, limit+1))
	lr := io.LimitedReader{R: r.Body, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(max(2*int64(cap(buf)), initialBodyBuffer), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(-1, min(limit, mbe.Limit))
			}
			return nil, newError(ErrMalformed, "", "reading the body: "+err.Error())
		}
	}
	if int64(len(buf)) > limit {
		return nil, tooLarge(-1, limit)
	}
	return buf, nil
}

// tooLarge builds an ErrTooLarge error; size < 0 means "more than limit".
func tooLarge(size, limit int64) *Error {
	if size < 0 {
		return newError(ErrTooLarge, "", "body exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes")
	}
	return newError(ErrTooLarge, "", "body of "+strconv.FormatInt(size, 10)+" bytes exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes")
}

// readBinary reads a binary-mode event.
func readBinary(r *http.Request, ct string, limit int64) (*pb.CloudEvent, *Error) {
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength, limit)
	}
	ev := &pb.CloudEvent{}
	// Report the smallest bad name so that errors do not depend on map
	// iteration order.
	var worst *Error
	var seen uint16 // required attributes that have a header, good or bad
	keep := func(e *Error) {
		if worst == nil || e.Attribute < worst.Attribute {
			worst = e
		}
	}
	for key, vals := range r.Header {
		if len(key) < 3 || key[0]|0x20 != 'c' || key[1]|0x20 != 'e' || key[2] != '-' {
			continue
		}
		name := headerAttrName(key[3:])
		var bit uint16
		switch name {
		case AttrSpecVersion:
			bit = seenSpecVersion
		case AttrID:
			bit = seenID
		case AttrSource:
			bit = seenSource
		case AttrType:
			bit = seenType
		}
		// The same attribute under two spellings of the header name (only
		// possible in a hand-built http.Header) is a repetition too.
		_, dup := ev.Attributes[name]
		dup = dup || seen&bit != 0
		seen |= bit
		if dup || len(vals) != 1 {
			keep(newError(ErrInvalidAttribute, name, "header ce-"+name+" is repeated"))
			continue
		}
		if msg := checkName(name); msg != "" {
			keep(newError(ErrInvalidAttribute, name, msg))
			continue
		}
		if name == AttrDataContentType {
			keep(newError(ErrInvalidAttribute, name, "binary mode carries datacontenttype in Content-Type; a ce-datacontenttype header is not allowed"))
			continue
		}
		val, msg := decodeHeaderValue(vals[0])
		if msg != "" {
			keep(newError(ErrInvalidAttribute, name, msg))
			continue
		}
		switch name {
		case AttrID, AttrSource, AttrSpecVersion, AttrType, AttrSubject, AttrDataSchema:
			if val == "" {
				keep(newError(ErrInvalidAttribute, name, "must be a non-empty string"))
				continue
			}
		}
		switch name {
		case AttrID:
			ev.Id = val
		case AttrSource:
			ev.Source = val
		case AttrSpecVersion:
			ev.SpecVersion = val
		case AttrType:
			ev.Type = val
		case AttrTime:
			ts, ok := parseTimestamp(val)
			if !ok {
				keep(newError(ErrInvalidAttribute, name, "not an RFC 3339 timestamp: "+quoteDetail(val)))
				continue
			}
			setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: ts}})
		case AttrDataSchema:
			setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: val}})
		default:
			setAttr(ev, name, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: val}})
		}
	}
	if worst != nil {
		// A missing required attribute says more about a request than a
		// bad header does: it is probably not a CloudEvent.
		if e := missingRequired(seen); e != nil {
			return nil, e
		}
		return nil, worst
	}
	if ct != "" {
		setAttr(ev, AttrDataContentType, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: ct}})
	}
	if e := validate(ev); e != nil {
		return nil, e
	}
	body, e := readBody(r, limit)
	if e != nil {
		return nil, e
	}
	if len(body) == 0 {
		return ev, nil
	}
	switch {
	case ct != "" && isJSONMediaType(ct):
		// The body as sent, whitespace around the value included: the
		// receiver may check a signature over these bytes.
		if isJSONValue(trimJSONSpace(body)) {
			ev.Data = &pb.CloudEvent_TextData{TextData: string(body)}
			return ev, nil
		}
	case ct != "" && isTextMediaType(ct):
		if utf8.Valid(body) {
			ev.Data = &pb.CloudEvent_TextData{TextData: string(body)}
			return ev, nil
		}
	}
	ev.Data = &pb.CloudEvent_BinaryData{BinaryData: body[:len(body):len(body)]}
	return ev, nil
}

// missingRequired reports the first required attribute without a header.
func missingRequired(seen uint16) *Error {
	for _, a := range [...]struct {
		bit  uint16
		name string
	}{{seenSpecVersion, AttrSpecVersion}, {seenID, AttrID}, {seenSource, AttrSource}, {seenType, AttrType}} {
		if seen&a.bit == 0 {
			return newError(ErrMissingAttribute, a.name, "")
		}
	}
	return nil
}

// headerAttrName lower-cases the part of a header name after "ce-",
// without allocating for the well-known attributes.
func headerAttrName(s string) string {
	for _, known := range [...]string{AttrID, AttrSource, AttrSpecVersion, AttrType, AttrTime, AttrSubject, AttrDataSchema, AttrDataContentType} {
		if strings.EqualFold(s, known) {
			return known
		}
	}
	return strings.ToLower(s)
}

// decodeHeaderValue turns a ce-* header value into an attribute string:
// optional whitespace trimmed, double-quoted strings unescaped (RFC 7230
// §3.2.6), then one round of percent-decoding; the result must be valid
// UTF-8 (which also refuses overlong encodings). msg is the reason a value
// is refused.
func decodeHeaderValue(v string) (val, msg string) {
	v = strings.Trim(v, " \t")
	if strings.IndexByte(v, '"') < 0 && strings.IndexByte(v, '%') < 0 {
		if !utf8.ValidString(v) {
			return "", "header value is not valid UTF-8"
		}
		return v, ""
	}
	b := make([]byte, 0, len(v))
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			quoted = !quoted
		case quoted && c == '\\':
			i++
			if i == len(v) {
				return "", "unterminated quoted string in header value"
			}
			b = append(b, v[i])
		default:
			b = append(b, c)
		}
	}
	if quoted {
		return "", "unterminated quoted string in header value"
	}
	out := b[:0]
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' {
			if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
				return "", "invalid percent-encoding in header value"
			}
			c = hexVal(b[i+1])<<4 | hexVal(b[i+2])
			i += 2
		}
		out = append(out, c)
	}
	if !utf8.Valid(out) {
		return "", "percent-decoded header value is not valid UTF-8"
	}
	return string(out), ""
}

// encodeHeaderValue percent-encodes an attribute string for a ce-* header:
// space, '"', '%' and every byte outside printable ASCII (so also every
// byte of a non-ASCII character's UTF-8 encoding) become %XX.
func encodeHeaderValue(s string) string {
	i := 0
	for i < len(s) && headerPlain(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if headerPlain(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xF])
		}
	}
	return string(b)
}

// hexVal decodes one (validated) hexadecimal digit.
func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// headerPlain reports whether a byte may appear unencoded in a ce-* header
// value.
func headerPlain(c byte) bool { return c > 0x20 && c < 0x7f && c != '"' && c != '%' }

// WriteBinary writes ev in HTTP binary content mode: it sets one ce-*
// header per context attribute (canonical string form, percent-encoded as
// the binding requires) and Content-Type from datacontenttype, and returns
// the body (the data bytes, nil for no data; binary data is returned
// without copying). Any ce-* and Content-Type headers already in h are
// removed first.
//
// When datacontenttype is absent, Content-Type is application/json only
// for text data that is exactly one JSON value: the data of an event in the
// JSON format, whose type that format implies, and JSON text from any other
// publisher. Other data without datacontenttype (text that is not JSON,
// binary data from the protobuf format, where an absent datacontenttype
// means unknown) gets no Content-Type at all: the binding maps
// datacontenttype to Content-Type and back, so a receiver reads the event
// as it was published, and HTTP lets a receiver treat a body without a type
// as application/octet-stream or examine it (RFC 9110 §8.3), which is the
// truth; any label would be a guess, and a wrong application/json makes
// JSON-parsing receivers fail on plain text.
//
// ReadRequest gives back an event equal to ev (proto.Equal, data
// byte-exact) when ev's extensions are ce_string values and its data sits
// where ReadRequest would put a body of its content type, which is the case
// for every event ReadRequest produces; an event without datacontenttype
// whose data is JSON text comes back with application/json made explicit.
//
// WriteBinary does not validate: callers deliver validated events.
// Attributes whose names are not valid CloudEvents names, or which
// duplicate the four required attributes, cannot be represented and are
// skipped.
func WriteBinary(ev *pb.CloudEvent, h http.Header) (body []byte) {
	for k := range h {
		if len(k) >= 3 && k[0]|0x20 == 'c' && k[1]|0x20 == 'e' && k[2] == '-' {
			delete(h, k)
		}
	}
	delete(h, "Content-Type")
	set := func(key, val string) { h[key] = []string{encodeHeaderValue(val)} }
	if v := ev.GetSpecVersion(); v != "" {
		set("Ce-Specversion", v)
	}
	if v := ev.GetId(); v != "" {
		set("Ce-Id", v)
	}
	if v := ev.GetSource(); v != "" {
		set("Ce-Source", v)
	}
	if v := ev.GetType(); v != "" {
		set("Ce-Type", v)
	}
	for name, v := range ev.GetAttributes() {
		if checkName(name) != "" {
			continue
		}
		s, ok := AttributeValueString(v)
		if !ok {
			continue
		}
		switch name {
		case AttrID, AttrSource, AttrSpecVersion, AttrType:
			continue
		case AttrDataContentType:
			h["Content-Type"] = []string{s}
			continue
		}
		set(headerKey(name), s)
	}
	if _, ok := h["Content-Type"]; !ok {
		if t, text := ev.GetData().(*pb.CloudEvent_TextData); text && isJSONValue(stringBytes(t.TextData)) {
			h["Content-Type"] = []string{"application/json"}
		}
	}
	return Data(ev)
}

// stringBytes returns the bytes of s without copying them; the caller must
// not modify them (the JSON scanner only reads).
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// headerKey returns the canonical header key of an attribute's ce-* header
// ("Ce-Traceparent" for traceparent).
func headerKey(name string) string {
	switch name {
	case AttrTime:
		return "Ce-Time"
	case AttrSubject:
		return "Ce-Subject"
	case AttrDataSchema:
		return "Ce-Dataschema"
	}
	c := name[0]
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	return "Ce-" + string(rune(c)) + name[1:]
}
