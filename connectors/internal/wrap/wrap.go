package wrap

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// IsStructured reports whether a message's content type is the JSON event
// format's (application/cloudevents+json, parameters and case aside). The
// type decides even when a parameter is malformed: the producer said what
// the payload is.
func IsStructured(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)) && mt == cloudevent.MediaTypeStructuredJSON
}

// LooksStructured is a cheap test, for a payload without a content type,
// before trying to decode it as a JSON-format event: a JSON object that
// names specversion.
func LooksStructured(p []byte) bool {
	p = bytes.TrimLeft(p, " \t\r\n")
	return len(p) > 0 && p[0] == '{' && bytes.Contains(p, []byte(`"specversion"`))
}

// CheckSourceType checks the source and type a connector gives the events
// it wraps (from its configuration or its defaults). The error names the
// configuration field at fault, sourceField or typeField:
// "fields.<name>: <what CloudEvents says>".
func CheckSourceType(source, typ, sourceField, typeField string) error {
	err := cloudevent.Validate(&pb.CloudEvent{Id: "probe", SpecVersion: cloudevent.SpecVersion, Source: source, Type: typ})
	var ce *cloudevent.Error
	if !errors.As(err, &ce) {
		return nil
	}
	field := sourceField
	if ce.Attribute == cloudevent.AttrType {
		field = typeField
	}
	return fmt.Errorf("fields.%s: %w", field, err)
}

// DropInvalid repairs a wrapped event whose optional attributes, taken
// from the message, CloudEvents refuses (a subject with control characters,
// a content type that is not a media type, a time out of range), rather
// than have the whole event refused: subject and time are removed, and an
// invalid datacontenttype is replaced by contentType() (removed when that
// is ""). Any other fault is left for the caller's validation to report.
func DropInvalid(ev *pb.CloudEvent, contentType func() string) {
	for range 3 { // at most one repair per attribute
		err := cloudevent.Validate(ev)
		var ce *cloudevent.Error
		if err == nil || !errors.As(err, &ce) {
			return
		}
		switch ce.Attribute {
		case cloudevent.AttrSubject, cloudevent.AttrTime:
			delete(ev.Attributes, ce.Attribute)
		case cloudevent.AttrDataContentType:
			if ct := contentType(); ct != "" {
				cloudevent.SetAttributeValue(ev, cloudevent.AttrDataContentType, cloudevent.StringValue(ct))
			} else {
				delete(ev.Attributes, ce.Attribute)
			}
		default:
			return
		}
	}
}

// SafeSubject returns s with every byte a CloudEvents string forbids
// (control characters, invalid UTF-8, Unicode noncharacters)
// percent-encoded; any other s is returned unchanged. A subject must not be
// empty: "" becomes "%00".
func SafeSubject(s string) string {
	if s == "" {
		return "%00"
	}
	ok := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if forbidden(r, n) {
			ok = false
			break
		}
		i += n
	}
	if ok {
		return s
	}
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if forbidden(r, n) {
			for j := i; j < i+n; j++ {
				b.WriteByte('%')
				b.WriteByte(hexd[s[j]>>4])
				b.WriteByte(hexd[s[j]&15])
			}
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func forbidden(r rune, size int) bool {
	return (r == utf8.RuneError && size == 1) || r < 0x20 || (r >= 0x7f && r <= 0x9f) ||
		(r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}

// ContentHash is a SHA-256 over the parts of a message that its producer
// chose, written unambiguously (every variable-length part prefixed with
// its length), so that a message without a usable id gets the same id each
// time the broker delivers it and two different messages never share one.
type ContentHash struct{ hash.Hash }

// NewContentHash returns an empty ContentHash.
func NewContentHash() ContentHash { return ContentHash{sha256.New()} }

// Uint writes n as a varint.
func (h ContentHash) Uint(n uint64) {
	var b [binary.MaxVarintLen64]byte
	h.Write(b[:binary.PutUvarint(b[:], n)])
}

// Bytes writes b prefixed with its length.
func (h ContentHash) Bytes(b []byte) {
	h.Uint(uint64(len(b)))
	h.Write(b)
}

// Text writes s prefixed with its length.
func (h ContentHash) Text(s string) {
	h.Uint(uint64(len(s)))
	h.Write([]byte(s))
}

// Hex returns the hash of what was written, in lower-case hex.
func (h ContentHash) Hex() string { return hex.EncodeToString(h.Sum(nil)) }

// TerminatedHash is the hex SHA-256 of parts, each followed by a NUL byte:
// the id of a change that directory and s3poll derive from what they saw
// (kind, path or key, size, time…). Unambiguous only for parts that cannot
// hold a NUL (paths, object keys, ETags, decimal numbers). Its bytes must
// never change: a source restarted on a newer version would give the same
// change another id.
func TerminatedHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
