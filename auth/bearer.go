package auth

import "strings"

// MaxAuthorizationBytes bounds an Authorization header (or gRPC metadata
// value) before it is parsed.
const MaxAuthorizationBytes = 16<<10 + 64

// BearerFromHeader returns the token of an Authorization header value
// ("Bearer <token>", RFC 6750: the scheme in any case, one or more spaces,
// then the token's characters A-Z a-z 0-9 - . _ ~ + / followed by optional
// '=' padding). An empty value gives "" and no error: no credentials. Any
// other scheme or a malformed token is an *UnauthenticatedError whose
// reason does not repeat the value.
func BearerFromHeader(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) > MaxAuthorizationBytes {
		return "", unauthenticated("", "Authorization header larger than %d bytes", MaxAuthorizationBytes)
	}
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated("", "unsupported Authorization scheme: use Bearer")
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || !isB64Token(tok) {
		return "", unauthenticated("", "malformed bearer token")
	}
	return tok, nil
}

// isB64Token reports whether s is an RFC 6750 b64token.
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// BearerFromValues returns the token of a request's Authorization header
// values (HTTP header or gRPC metadata, which may repeat it). More than one
// value is refused: which one would count is ambiguous, and proxies differ.
func BearerFromValues(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return BearerFromHeader(values[0])
	}
	return "", unauthenticated("", "more than one Authorization header")
}
