package cloudevent

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// SpecVersion is the only CloudEvents specversion this package accepts.
const SpecVersion = "1.0"

// Validate checks ev against CloudEvents 1.0 and the Switchyard in-memory
// conventions for *pb.CloudEvent:
//
//   - id, source, specversion and type are present and non-empty;
//     specversion is "1.0"; source is a URI-reference (RFC 3986 §4.1);
//   - attribute names consist of a-z and 0-9 only (longer than the
//     recommended 20 characters is accepted), are not "data", and are not one
//     of the four required attributes (those live in the message fields);
//   - datacontenttype is a ce_string holding an RFC 2045/2046 media type,
//     dataschema a ce_uri holding an absolute URI (RFC 3986 §4.3), subject a
//     non-empty ce_string and time a ce_timestamp within 0001..9999;
//   - every value has a variant set; string values contain only characters
//     the CloudEvents type system allows (no C0/C1 control characters, no
//     Unicode noncharacters, valid UTF-8); ce_uri values are absolute URIs,
//     ce_uri_ref values URI-references and ce_timestamp values in range.
//
// It returns nil or an *Error naming the first offending attribute (the
// required attributes first, then the others in name order). Validate does
// not look at the data.
func Validate(ev *pb.CloudEvent) error {
	if e := validate(ev); e != nil {
		return e
	}
	return nil
}

// ValidateBatch validates every event of a batch and reports all bad events
// at once: the result is nil or an errors.Join of one *Error per bad event,
// each with its Index set.
func ValidateBatch(evs []*pb.CloudEvent) error {
	var errs []error
	for i, ev := range evs {
		if e := validate(ev); e != nil {
			e.Index = i
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// validate is Validate returning a concrete type, so that callers can set
// Index without a type assertion.
func validate(ev *pb.CloudEvent) *Error {
	if ev == nil {
		return newError(ErrMalformed, "", "nil event")
	}
	switch sv := ev.GetSpecVersion(); {
	case sv == "":
		return newError(ErrMissingAttribute, AttrSpecVersion, "")
	case sv != SpecVersion:
		return newError(ErrInvalidAttribute, AttrSpecVersion, "unsupported version "+quoteDetail(sv)+", want \"1.0\"")
	}
	if ev.GetId() == "" {
		return newError(ErrMissingAttribute, AttrID, "")
	}
	if msg := checkString(ev.GetId()); msg != "" {
		return newError(ErrInvalidAttribute, AttrID, msg)
	}
	if ev.GetSource() == "" {
		return newError(ErrMissingAttribute, AttrSource, "")
	}
	if msg := checkURIRef(ev.GetSource()); msg != "" {
		return newError(ErrInvalidAttribute, AttrSource, "not a URI-reference: "+msg+": "+quoteDetail(ev.GetSource()))
	}
	if ev.GetType() == "" {
		return newError(ErrMissingAttribute, AttrType, "")
	}
	if msg := checkString(ev.GetType()); msg != "" {
		return newError(ErrInvalidAttribute, AttrType, msg)
	}
	attrs := ev.GetAttributes()
	if len(attrs) == 0 {
		return nil
	}
	// Report the lexically smallest bad name so that the error does not
	// depend on map iteration order. The success path does not allocate.
	var worst *Error
	for name, v := range attrs {
		if worst != nil && name >= worst.Attribute {
			continue
		}
		if e := validateAttribute(name, v); e != nil {
			worst = e
		}
	}
	return worst
}

// validateAttribute checks one entry of the attributes map.
func validateAttribute(name string, v *pb.CloudEventAttributeValue) *Error {
	if msg := checkName(name); msg != "" {
		return newError(ErrInvalidAttribute, name, msg)
	}
	switch name {
	case AttrID, AttrSource, AttrSpecVersion, AttrType:
		return newError(ErrInvalidAttribute, name, "a required attribute must be carried in its CloudEvent field, not in the attributes map")
	}
	if v.GetAttr() == nil {
		return newError(ErrInvalidAttribute, name, "no value")
	}
	switch name {
	case AttrDataContentType:
		s, ok := v.GetAttr().(*pb.CloudEventAttributeValue_CeString)
		if !ok {
			return newError(ErrInvalidAttribute, name, "must be a ce_string, got "+variantName(v))
		}
		if _, _, ok := parseMediaType(s.CeString); !ok {
			return newError(ErrInvalidAttribute, name, "not an RFC 2046 media type: "+quoteDetail(s.CeString))
		}
		return nil
	case AttrDataSchema:
		s, ok := v.GetAttr().(*pb.CloudEventAttributeValue_CeUri)
		if !ok {
			return newError(ErrInvalidAttribute, name, "must be a ce_uri, got "+variantName(v))
		}
		if s.CeUri == "" {
			return newError(ErrInvalidAttribute, name, "must be a non-empty URI")
		}
		if msg := checkURI(s.CeUri); msg != "" {
			return newError(ErrInvalidAttribute, name, "not an absolute URI: "+msg+": "+quoteDetail(s.CeUri)+schemeHint(s.CeUri, msg))
		}
		return nil
	case AttrSubject:
		s, ok := v.GetAttr().(*pb.CloudEventAttributeValue_CeString)
		if !ok {
			return newError(ErrInvalidAttribute, name, "must be a ce_string, got "+variantName(v))
		}
		if s.CeString == "" {
			return newError(ErrInvalidAttribute, name, "must be a non-empty string")
		}
		if msg := checkString(s.CeString); msg != "" {
			return newError(ErrInvalidAttribute, name, msg)
		}
		return nil
	case AttrTime:
		if _, ok := v.GetAttr().(*pb.CloudEventAttributeValue_CeTimestamp); !ok {
			return newError(ErrInvalidAttribute, name, "must be a ce_timestamp, got "+variantName(v))
		}
	}
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeString:
		if msg := checkString(a.CeString); msg != "" {
			return newError(ErrInvalidAttribute, name, msg)
		}
	case *pb.CloudEventAttributeValue_CeUri:
		if msg := checkURI(a.CeUri); msg != "" {
			return newError(ErrInvalidAttribute, name, "not an absolute URI: "+msg+": "+quoteDetail(a.CeUri))
		}
	case *pb.CloudEventAttributeValue_CeUriRef:
		if msg := checkURIRef(a.CeUriRef); msg != "" {
			return newError(ErrInvalidAttribute, name, "not a URI-reference: "+msg+": "+quoteDetail(a.CeUriRef))
		}
	case *pb.CloudEventAttributeValue_CeTimestamp:
		if a.CeTimestamp == nil {
			return newError(ErrInvalidAttribute, name, "nil timestamp")
		}
		if err := a.CeTimestamp.CheckValid(); err != nil {
			return newError(ErrInvalidAttribute, name, "timestamp out of range (0001-01-01 to 9999-12-31)")
		}
	}
	return nil
}

// schemeHint completes the error for a dataschema without a scheme whose
// first segment is a host name, as a protobuf type URL is written
// ("type.googleapis.com/pkg.Msg"): CloudEvents 1.0 makes dataschema an
// absolute URI, so the protobuf format's type URL needs its scheme.
func schemeHint(s, msg string) string {
	if msg != "no scheme" {
		return ""
	}
	host, _, ok := strings.Cut(s, "/")
	if !ok || !strings.Contains(host, ".") {
		return ""
	}
	return " (an absolute URI needs a scheme: " + quoteDetail("https://"+s) + ")"
}

// variantName names the oneof variant of an attribute value, for errors.
func variantName(v *pb.CloudEventAttributeValue) string {
	switch v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeBoolean:
		return "ce_boolean"
	case *pb.CloudEventAttributeValue_CeInteger:
		return "ce_integer"
	case *pb.CloudEventAttributeValue_CeString:
		return "ce_string"
	case *pb.CloudEventAttributeValue_CeBytes:
		return "ce_bytes"
	case *pb.CloudEventAttributeValue_CeUri:
		return "ce_uri"
	case *pb.CloudEventAttributeValue_CeUriRef:
		return "ce_uri_ref"
	case *pb.CloudEventAttributeValue_CeTimestamp:
		return "ce_timestamp"
	}
	return "no value"
}

// checkName returns "" when name is a valid CloudEvents attribute name
// (non-empty, a-z and 0-9 only, not the reserved "data"), or the reason it
// is not.
func checkName(name string) string {
	if name == "" {
		return "invalid name: must not be empty"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') {
			continue
		}
		return "invalid name: must consist of lower-case letters a-z and digits 0-9 only"
	}
	if name == "data" {
		return `invalid name: "data" is reserved`
	}
	return ""
}

// checkString returns "" when s is a valid CloudEvents String (valid UTF-8
// without C0/C1 control characters or Unicode noncharacters; surrogates
// cannot occur in valid UTF-8), or the reason it is not.
func checkString(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return "contains control character " + runeName(rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "not valid UTF-8"
		}
		if r <= 0x9f {
			return "contains control character " + runeName(r)
		}
		if (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE {
			return "contains Unicode noncharacter " + runeName(r)
		}
		i += size
	}
	return ""
}

// runeName renders a code point as U+XXXX.
func runeName(r rune) string {
	const hex = "0123456789ABCDEF"
	b := []byte("U+")
	digits := 4
	if r > 0xFFFF {
		digits = 6
	}
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(r>>(4*uint(i)))&0xF])
	}
	return string(b)
}

// URI character classes (RFC 3986 §2).
const (
	uriUnreserved = 1 << iota // ALPHA DIGIT - . _ ~
	uriSubDelim               // ! $ & ' ( ) * + , ; =
	uriGenDelim               // : / ? # [ ] @
	uriSchemeChar             // ALPHA DIGIT + - .
)

var uriClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= uriUnreserved | uriSchemeChar
		t[c-'a'+'A'] |= uriUnreserved | uriSchemeChar
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= uriUnreserved | uriSchemeChar
	}
	for _, c := range "-._~" {
		t[c] |= uriUnreserved
	}
	for _, c := range "!$&'()*+,;=" {
		t[c] |= uriSubDelim
	}
	for _, c := range ":/?#[]@" {
		t[c] |= uriGenDelim
	}
	t['+'] |= uriSchemeChar
	t['-'] |= uriSchemeChar
	t['.'] |= uriSchemeChar
	return t
}()

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// checkURIRef returns "" when s is a URI-reference (RFC 3986 §4.1), or the
// reason it is not. The empty string is a valid (same-document) reference;
// callers that need a non-empty value check that themselves.
func checkURIRef(s string) string {
	_, msg := checkURIGeneric(s)
	return msg
}

// checkURI returns "" when s is an absolute URI (RFC 3986 §4.3: a scheme and
// no fragment), or the reason it is not.
func checkURI(s string) string {
	hasScheme, msg := checkURIGeneric(s)
	if msg != "" {
		return msg
	}
	if !hasScheme {
		return "no scheme"
	}
	if strings.IndexByte(s, '#') >= 0 {
		return "an absolute URI has no fragment"
	}
	return ""
}

// checkURIGeneric validates the RFC 3986 URI-reference grammar: allowed
// characters and percent-encodings, a well-formed scheme when the first
// segment contains a colon, square brackets only around an IP literal host,
// a numeric port and at most one '#'. It reports whether s has a scheme.
func checkURIGeneric(s string) (hasScheme bool, msg string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false, "invalid percent-encoding"
			}
			i += 2
			continue
		}
		if uriClass[c] == 0 {
			if c < 0x20 || c >= 0x7f {
				return false, "contains a character outside printable ASCII"
			}
			return false, "contains character " + quoteDetail(string(c))
		}
	}
	rest := s
	// Scheme: everything up to the first ':' if it comes before '/', '?'
	// and '#'. A colon in the first segment of a relative reference is not
	// allowed, so a bad scheme is an error rather than a relative path.
	if i := strings.IndexAny(s, ":/?#"); i >= 0 && s[i] == ':' {
		scheme := s[:i]
		if scheme == "" {
			return false, "empty scheme"
		}
		if !('a' <= scheme[0]|0x20 && scheme[0]|0x20 <= 'z') {
			return false, "scheme must start with a letter"
		}
		for j := 1; j < len(scheme); j++ {
			if uriClass[scheme[j]]&uriSchemeChar == 0 {
				return false, "invalid character in scheme"
			}
		}
		hasScheme = true
		rest = s[i+1:]
	}
	// Fragment.
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		frag := rest[i+1:]
		if strings.ContainsAny(frag, "#[]") {
			return hasScheme, "invalid character in fragment"
		}
		rest = rest[:i]
	}
	// Query.
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if strings.ContainsAny(rest[i+1:], "[]") {
			return hasScheme, "invalid character in query"
		}
		rest = rest[:i]
	}
	// Authority.
	if strings.HasPrefix(rest, "//") {
		auth := rest[2:]
		path := ""
		if i := strings.IndexByte(auth, '/'); i >= 0 {
			auth, path = auth[:i], auth[i:]
		}
		if strings.ContainsAny(path, "[]") {
			return hasScheme, "invalid character in path"
		}
		if i := strings.LastIndexByte(auth, '@'); i >= 0 {
			if strings.ContainsAny(auth[:i], "@[]") {
				return hasScheme, "invalid userinfo"
			}
			auth = auth[i+1:]
		}
		port := ""
		if strings.HasPrefix(auth, "[") {
			end := strings.IndexByte(auth, ']')
			if end < 0 {
				return hasScheme, "unterminated IP literal"
			}
			lit := auth[1:end]
			if lit == "" || strings.ContainsAny(lit, "[/?#@%") {
				return hasScheme, "invalid IP literal"
			}
			after := auth[end+1:]
			if after != "" {
				if after[0] != ':' {
					return hasScheme, "invalid characters after IP literal"
				}
				port = after[1:]
			}
		} else {
			if strings.ContainsAny(auth, "[]") {
				return hasScheme, "invalid character in host"
			}
			if i := strings.IndexByte(auth, ':'); i >= 0 {
				port = auth[i+1:]
			}
		}
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return hasScheme, "port must be numeric"
			}
		}
		return hasScheme, ""
	}
	if strings.ContainsAny(rest, "[]") {
		return hasScheme, "invalid character in path"
	}
	return hasScheme, ""
}

// RFC 2045 token characters: any CHAR except SPACE, CTLs and tspecials.
var tokenChar = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `()<>@,;:\"/[]?=` {
		t[c] = false
	}
	return t
}()

// parseMediaType parses an RFC 2045/2046 media type with optional
// parameters ("type/subtype *(OWS ';' OWS attribute=value) OWS", value a
// token or a quoted-string) without allocating. It returns the type and
// subtype as found (compare them case-insensitively) and whether s is
// well-formed. A trailing ';' without a parameter is tolerated.
func parseMediaType(s string) (typ, sub string, ok bool) {
	i := 0
	tok := func() string {
		start := i
		for i < len(s) && tokenChar[s[i]] {
			i++
		}
		return s[start:i]
	}
	ows := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	typ = tok()
	if typ == "" || i >= len(s) || s[i] != '/' {
		return "", "", false
	}
	i++
	sub = tok()
	if sub == "" {
		return "", "", false
	}
	for {
		ows()
		if i == len(s) {
			return typ, sub, true
		}
		if s[i] != ';' {
			return "", "", false
		}
		i++
		ows()
		if i == len(s) {
			return typ, sub, true
		}
		if tok() == "" || i >= len(s) || s[i] != '=' {
			return "", "", false
		}
		i++
		if i < len(s) && s[i] == '"' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' {
					if i == len(s) {
						return "", "", false
					}
					c = s[i]
					i++
				} else if c == '"' {
					closed = true
					break
				}
				if (c < 0x20 && c != '\t') || c == 0x7f {
					return "", "", false
				}
			}
			if !closed {
				return "", "", false
			}
		} else if tok() == "" {
			return "", "", false
		}
	}
}

// mediaParam returns the value of the named parameter (case-insensitive
// name) of a media type that parseMediaType accepted, unquoted, and whether
// it is present.
func mediaParam(s, name string) (string, bool) {
	i := strings.IndexByte(s, ';')
	for i >= 0 {
		s = strings.TrimLeft(s[i+1:], " \t")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return "", false
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			val = b.String()
			s = s[min(j+1, len(s)):]
		} else {
			end := 0
			for end < len(s) && tokenChar[s[end]] {
				end++
			}
			val, s = s[:end], s[end:]
		}
		if strings.EqualFold(key, name) {
			return val, true
		}
		i = strings.IndexByte(s, ';')
	}
	return "", false
}

// isJSONMediaType reports whether the media type declares JSON-formatted
// content: subtype "json" or ending in "+json" (application/json,
// text/json, application/cloudevents+json, ...), parameters ignored.
func isJSONMediaType(ct string) bool {
	_, sub, ok := parseMediaType(ct)
	if !ok {
		return false
	}
	return strings.EqualFold(sub, "json") ||
		(len(sub) >= 5 && strings.EqualFold(sub[len(sub)-5:], "+json"))
}

// isTextMediaType reports whether the media type is text/*.
func isTextMediaType(ct string) bool {
	typ, _, ok := parseMediaType(ct)
	return ok && strings.EqualFold(typ, "text")
}
