package auth

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func FuzzParseAPIKey(f *testing.F) {
	key, _ := newAPIKey()
	for _, s := range []string{key, key[:len(key)-1], strings.ToUpper(key), APIKeyPrefix, "", "syk__", key + "_", strings.Replace(key, "_", "-", 2)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := ParseAPIKey(s)
		if !ok {
			if id != "" || secret != "" {
				t.Fatal("a refused key returned parts")
			}
			return
		}
		if s != APIKeyPrefix+id+"_"+secret || len(s) != APIKeyLength || len(id) != apiKeyIDLen || len(secret) != apiKeySecretLen {
			t.Fatalf("accepted %q as id %q secret %q", s, id, secret)
		}
		if !isKeyAlphabet(id) || !isKeyAlphabet(secret) {
			t.Fatalf("accepted characters outside the alphabet: %q", s)
		}
	})
}

func FuzzBearerFromHeader(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a.b.c", "Basic x", "Bearer", "Bearer =", "Bearer a==", "Bearer a=b", "", "Bearer syk_a_b", "BEARER\ta"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := BearerFromHeader(h)
		if err != nil {
			if tok != "" {
				t.Fatal("a refusal returned a token")
			}
			if len(h) > 24 && strings.Contains(err.Error(), h[len(h)-16:]) {
				t.Fatalf("the refusal %q echoes the header", err)
			}
			return
		}
		if h == "" {
			if tok != "" {
				t.Fatal("a token from nothing")
			}
			return
		}
		if tok == "" || !isB64Token(tok) || !strings.HasSuffix(h, tok) || len(tok) > len(h) {
			t.Fatalf("BearerFromHeader(%q) = %q", h, tok)
		}
		if again, err := BearerFromHeader("Bearer " + tok); err != nil || again != tok {
			t.Fatalf("round trip of %q: %q, %v", tok, again, err)
		}
		if strings.ContainsAny(tok, " \t\r\n\x00,;") {
			t.Fatalf("token %q holds a separator", tok)
		}
	})
}

// FuzzJWTVerify feeds arbitrary bearer tokens to an authenticator with JWT
// and a bootstrap token on: nothing may panic, and nothing may be accepted
// (the seeds are near misses: expired, tampered, unsigned, HMAC-signed).
func FuzzJWTVerify(f *testing.F) {
	ec := newEC(f, "ec-1")
	dir := f.TempDir()
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, jwksOf(ec), 0o600); err != nil {
		f.Fatal(err)
	}
	a, err := New(Config{AdminToken: testAdminToken, APIKeys: APIKeyConfig{Disabled: true},
		JWT: JWTConfig{JWKSFile: path, Issuer: testIssuer, Audiences: []string{testAudience}}}, nil, quiet)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = a.Close() })

	sign := func(alg jose.SignatureAlgorithm, key any, c map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "ec-1"))
		if err != nil {
			f.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	expired := claims("a", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
	valid := claims("a", nil)
	good := sign(jose.ES256, ec.priv, valid)
	f.Add(sign(jose.ES256, ec.priv, expired))
	f.Add(tamper(good))
	f.Add(stripSig(good))
	f.Add(sign(jose.HS256, []byte(strings.Repeat("s", 32)), valid))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + strings.Split(good, ".")[1] + ".")
	f.Add(testAdminToken[:len(testAdminToken)-1])
	f.Add("a.b.c")
	f.Add("..")
	f.Add(strings.Repeat("eyJ.", 3000))
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good || tok == testAdminToken {
			return
		}
		id, err := a.Authenticate(context.Background(), Credentials{Bearer: tok})
		if err == nil {
			t.Fatalf("accepted %q as %+v", tok, id)
		}
		// The verifier itself, whatever the routing would have done.
		if id, err := a.jwt.verify(context.Background(), tok); err == nil {
			t.Fatalf("the JWT verifier accepted %q as %+v", tok, id)
		}
	})
}

// FuzzScopeMatch checks prefix matching against its definition, and that
// Covers is sound: whatever a covered scope allows, the covering one allows.
func FuzzScopeMatch(f *testing.F) {
	f.Add("shop-", "", "shop-orders")
	f.Add("/shop/", "/bank/", "/shop")
	f.Add("", "", "")
	f.Add("a", "ab", "abc")
	f.Add("ab", "a", "ac")
	f.Fuzz(func(t *testing.T, p1, p2, v string) {
		want := (p1 != "" && strings.HasPrefix(v, p1)) || (p2 != "" && strings.HasPrefix(v, p2))
		if got := matchPrefix([]string{p1, p2}, v); got != want {
			t.Fatalf("matchPrefix([%q %q], %q) = %v", p1, p2, v, got)
		}
		if !matchPrefix(nil, v) {
			t.Fatal("an empty list restricts")
		}
		outer := &Identity{Scope: Scope{Triggers: []string{p1}, Sources: []string{p1}}}
		inner := Scope{Triggers: []string{p2}, Sources: []string{p2}}
		if outer.Covers(inner) {
			if inner.AllowsTrigger(v) && !outer.Scope.AllowsTrigger(v) {
				t.Fatalf("scope %q covers %q but %q escapes it", p1, p2, v)
			}
			if p1 == "" || p2 == "" {
				t.Fatalf("an empty prefix took part in covering: %q %q", p1, p2)
			}
		}
		if p1 != "" && !outer.Covers(outer.Scope) {
			t.Fatalf("scope %q does not cover itself", p1)
		}
		if p1 != "" && outer.Covers(Scope{}) {
			t.Fatal("a restricted scope covers the unrestricted one")
		}
	})
}

func FuzzRedact(f *testing.F) {
	f.Add("x", "y")
	f.Add("Bearer ", "")
	f.Add("syk_", "_")
	f.Fuzz(func(t *testing.T, before, after string) {
		key, _ := newAPIKey()
		_, secret, _ := ParseAPIKey(key)
		out := Redact(before + " " + key + " " + after)
		if strings.Contains(out, secret) && !strings.Contains(before+after, secret) {
			t.Fatalf("the secret survived: %q", out)
		}
	})
}
