package cloudevent

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by this package is an *Error (or, for
// batches, an errors.Join of *Error values) whose Kind is one of these, so
// callers can classify failures with errors.Is.
var (
	// ErrMalformed reports input that is not a syntactically well-formed
	// event: invalid JSON, a top-level value of the wrong JSON type, a
	// duplicate object member, both "data" and "data_base64", invalid
	// base64 in "data_base64", or an unreadable request body.
	ErrMalformed = errors.New("cloudevent: malformed event")

	// ErrMissingAttribute reports that a REQUIRED context attribute (id,
	// source, specversion or type) is absent or empty.
	ErrMissingAttribute = errors.New("cloudevent: missing required attribute")

	// ErrInvalidAttribute reports a context attribute that is present but
	// whose name, type or value violates CloudEvents 1.0 (for instance an
	// unsupported specversion, a non-RFC 3339 time, a relative dataschema or
	// an upper-case extension name).
	ErrInvalidAttribute = errors.New("cloudevent: invalid attribute")

	// ErrUnsupportedMediaType reports an HTTP Content-Type that names a
	// CloudEvents event format other than JSON (for instance
	// application/cloudevents+avro) or a JSON format with a charset other
	// than UTF-8.
	ErrUnsupportedMediaType = errors.New("cloudevent: unsupported media type")

	// ErrTooLarge reports an event or batch larger than the configured
	// Limits.
	ErrTooLarge = errors.New("cloudevent: too large")

	// ErrEmptyBatch reports a publish call that carries no event (a gRPC
	// PublishBatch with none, router.Publish given none). This package
	// never returns it: the JSON batch format allows an empty batch, so
	// DecodeBatch and ReadRequest accept "[]" and return no events.
	ErrEmptyBatch = errors.New("cloudevent: empty batch")
)

// Error is the error type returned by this package. Kind says what went
// wrong (one of the sentinels above), Attribute and Index say where, and
// Detail says exactly how.
type Error struct {
	// Kind is one of ErrMalformed, ErrMissingAttribute, ErrInvalidAttribute,
	// ErrUnsupportedMediaType, ErrTooLarge or ErrEmptyBatch.
	Kind error
	// Attribute is the name of the offending context attribute (or the JSON
	// member "data"/"data_base64", or the offending member name as sent),
	// and "" when the error is not about one attribute.
	Attribute string
	// Index is the position of the offending event in a batch, and -1 when
	// the error is not about one event of a batch.
	Index int
	// Detail is a human-readable explanation, possibly empty.
	Detail string
}

// newError returns an *Error that is not tied to a batch position.
func newError(kind error, attr, detail string) *Error {
	return &Error{Kind: kind, Attribute: attr, Index: -1, Detail: detail}
}

// Error renders the error precisely, for instance
//
//	event[3]: missing required attribute "source"
//	attribute "time": not an RFC 3339 timestamp: "yesterday"
//	malformed event: both "data" and "data_base64" are present
func (e *Error) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		b.WriteString("event[")
		b.WriteString(strconv.Itoa(e.Index))
		b.WriteString("]: ")
	}
	switch {
	case e.Kind == ErrMissingAttribute && e.Attribute != "":
		b.WriteString("missing required attribute ")
		b.WriteString(strconv.Quote(e.Attribute))
	case e.Attribute == "data" || e.Attribute == "data_base64":
		b.WriteString("member ")
		b.WriteString(strconv.Quote(e.Attribute))
	case e.Attribute != "":
		b.WriteString("attribute ")
		b.WriteString(strconv.Quote(e.Attribute))
	default:
		b.WriteString(kindText(e.Kind))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns Kind, so that errors.Is(err, ErrMissingAttribute) and the
// like work on an *Error.
func (e *Error) Unwrap() error { return e.Kind }

// kindText is the message prefix of an error that names no attribute.
func kindText(kind error) string {
	switch kind {
	case ErrMalformed:
		return "malformed event"
	case ErrMissingAttribute:
		return "missing required attribute"
	case ErrInvalidAttribute:
		return "invalid attribute"
	case ErrUnsupportedMediaType:
		return "unsupported media type"
	case ErrTooLarge:
		return "too large"
	case ErrEmptyBatch:
		return "empty batch"
	case nil:
		return "cloudevent error"
	}
	return kind.Error()
}

// quoteDetail quotes a value for an error message, shortening very long
// values so that error strings stay readable and bounded.
func quoteDetail(s string) string {
	const max = 128
	if len(s) > max {
		// Cut on a rune boundary.
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
