package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtVerifier checks JWT bearer tokens: signature by a JWKS key, issuer,
// audience, expiry (required), not-before and issued-at with the configured
// skew; then reads subject, roles and scope from the configured claims.
type jwtVerifier struct {
	cfg    JWTConfig
	algs   []jose.SignatureAlgorithm
	src    *jwksSource
	static map[string]StaticIdentity // method jwt, by subject
	now    func() time.Time
}

func newJWTVerifier(cfg JWTConfig, static map[string]StaticIdentity, src *jwksSource) *jwtVerifier {
	v := &jwtVerifier{cfg: cfg, src: src, static: static, now: time.Now}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	return v
}

// looksLikeJWT reports whether a bearer token has the shape of a signed JWT
// (three dot-separated parts).
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// peekHeader reads the algorithm and key id of a compact JWS before any
// verification, to refuse unaccepted algorithms with a precise reason.
func peekHeader(token string) (alg, kid string, err error) {
	i := strings.IndexByte(token, '.')
	if i <= 0 {
		return "", "", errors.New("malformed token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(token[:i])
	if err != nil {
		return "", "", errors.New("malformed token header")
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", "", errors.New("malformed token header")
	}
	return h.Alg, h.Kid, nil
}

// verify returns the identity a token proves. Every failure is an
// *UnauthenticatedError whose reason names the check that failed, never
// the token; a key set that cannot be fetched also reads "unknown key".
func (v *jwtVerifier) verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > v.cfg.MaxTokenBytes {
		return nil, unauthenticated(MethodJWT, "token larger than %d bytes", v.cfg.MaxTokenBytes)
	}
	alg, _, err := peekHeader(token)
	if err != nil {
		return nil, unauthenticated(MethodJWT, "%v", err)
	}
	if !slices.Contains(v.cfg.Algorithms, alg) {
		return nil, unauthenticated(MethodJWT, "signature algorithm %q is not accepted", truncate(alg, 16))
	}
	tok, err := jwt.ParseSigned(token, v.algs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, unauthenticated(MethodJWT, "malformed token")
	}
	h := tok.Headers[0]
	if string(h.Algorithm) != alg {
		return nil, unauthenticated(MethodJWT, "malformed token header")
	}
	key, err := v.src.key(ctx, h.KeyID, alg)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key, &std, &all); err != nil {
		return nil, unauthenticated(MethodJWT, "invalid signature or claims")
	}
	if std.Expiry == nil {
		return nil, unauthenticated(MethodJWT, "token has no expiry (exp)")
	}
	exp := jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience(v.cfg.Audiences), Time: v.now()}
	if err := std.ValidateWithLeeway(exp, v.cfg.ClockSkew.Duration); err != nil {
		return nil, unauthenticated(MethodJWT, "%s", claimFailure(err))
	}
	id, err := v.identity(all)
	if err != nil {
		return nil, err
	}
	id.Expires = std.Expiry.Time()
	return id, nil
}

func claimFailure(err error) string {
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrNotValidYet):
		return "token not valid yet (nbf)"
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "token issued in the future (iat)"
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrInvalidAudience):
		return "token audience not accepted"
	}
	return "invalid claims"
}

// identity maps verified claims to an identity. Roles come from the roles
// claim; a token without that claim takes roles and scope from a static
// identity of method jwt with its subject, else has no roles (it is who it
// says, and may do nothing).
func (v *jwtVerifier) identity(claims map[string]any) (*Identity, error) {
	sub, _ := claimAt(claims, v.cfg.SubjectClaim)
	subject, ok := sub.(string)
	if !ok || subject == "" {
		return nil, unauthenticated(MethodJWT, "token has no subject (%s)", v.cfg.SubjectClaim)
	}
	id := &Identity{Subject: subject, Method: MethodJWT}
	rawRoles, present := claimAt(claims, v.cfg.RolesClaim)
	if !present {
		if si, ok := v.static[subject]; ok {
			id.Roles, id.Scope = si.Roles, si.Scope
			return id.clone(), nil
		}
		return id, nil
	}
	names, err := claimStrings(rawRoles)
	if err != nil {
		return nil, unauthenticated(MethodJWT, "claim %s: %v", v.cfg.RolesClaim, err)
	}
	for _, n := range names {
		if v.cfg.RolePrefix != "" {
			var cut bool
			if n, cut = strings.CutPrefix(n, v.cfg.RolePrefix); !cut {
				continue
			}
		}
		if r := Role(n); ValidRole(r) && !slices.Contains(id.Roles, r) {
			id.Roles = append(id.Roles, r)
		}
	}
	for _, d := range []struct {
		path string
		dst  *[]string
	}{{v.cfg.SourcesClaim, &id.Scope.Sources}, {v.cfg.TypesClaim, &id.Scope.Types}, {v.cfg.TriggersClaim, &id.Scope.Triggers}} {
		if d.path == "" {
			continue
		}
		raw, present := claimAt(claims, d.path)
		if !present {
			continue
		}
		list, err := claimStrings(raw)
		if err != nil {
			return nil, unauthenticated(MethodJWT, "claim %s: %v", d.path, err)
		}
		if len(list) == 0 {
			// Present but empty must not read as "unrestricted".
			return nil, unauthenticated(MethodJWT, "claim %s is empty", d.path)
		}
		*d.dst = list
	}
	if err := id.Scope.Validate("scope"); err != nil {
		return nil, unauthenticated(MethodJWT, "token carries an invalid scope: %v", err)
	}
	return id, nil
}

// claimAt finds a claim by path: the whole path as a name first (names like
// "https://example.com/roles" hold dots), then split at each dot into nested
// objects.
func claimAt(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if v, ok := claimAt(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// maxClaimValues bounds a list claim; the token size bounds it already,
// this keeps a decision cheap.
const maxClaimValues = 256

// claimStrings reads a claim holding a list of strings, or one string of
// values separated by spaces or commas (as OAuth's "scope").
func claimStrings(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }), nil
	case []any:
		if len(v) > maxClaimValues {
			return nil, fmt.Errorf("more than %d values", maxClaimValues)
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("not a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("not a string or a list of strings")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
