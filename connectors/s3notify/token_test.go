package s3notify

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// FuzzValidToken checks the token header against its definition: the bare
// token or "Bearer <token>" (scheme case-insensitive), surrounding spaces
// ignored, nothing else.
func FuzzValidToken(f *testing.F) {
	for _, seed := range [][2]string{
		{"s3cret", "s3cret"}, {"s3cret", "Bearer s3cret"}, {"s3cret", "bearer   s3cret "}, {"s3cret", "Bearer"},
		{"s3cret", "Basic s3cret"}, {"s3cret", "s3cret2"}, {"Bearer x", "Bearer x"}, {"x", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, token, header string) {
		if token == "" {
			return // no token: the check is off
		}
		s := &Source{token: sha256.Sum256([]byte(token)), hasToken: true}
		h := strings.TrimSpace(header)
		bearer := len(h) > 7 && strings.EqualFold(h[:7], "bearer ") && strings.TrimSpace(h[7:]) == token
		if want := h == token || bearer; s.validToken(header) != want {
			t.Fatalf("token %q, header %q: valid %v, want %v", token, header, !want, want)
		}
	})
}
