package logging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// RequestIDHeader is the HTTP header (and, lower-cased, the gRPC metadata
// key) carrying a request id in both directions.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen bounds a request id a client may choose.
const MaxRequestIDLen = 128

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a random request id (24 hex digits).
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CleanRequestID reports whether an id a client sent may be kept: 1 to
// MaxRequestIDLen characters among letters, digits and - _ . : / + = @. It
// is echoed in a header and written in logs, so nothing that could split a
// header, forge a log line or hide in a terminal passes; a refused id is
// replaced by a new one, not an error (the call itself is fine).
func CleanRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}

// RequestIDFrom returns the id a client sent when CleanRequestID keeps it,
// else a new one.
func RequestIDFrom(sent string) string {
	if CleanRequestID(sent) {
		return sent
	}
	return NewRequestID()
}
