package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

const (
	testIssuer   = "https://idp.test"
	testAudience = "switchyard"
)

// signingKey is a private key the test signs with, and its public JWK.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey
)

// rsaKey returns one of three RSA keys, generated once for all tests
// (generation is the slow part of these tests).
func rsaKey(t *testing.T, i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func newRSA(t *testing.T, kid string, i int) signingKey {
	return signingKey{kid: kid, alg: jose.RS256, priv: rsaKey(t, i)}
}

func newEC(t testing.TB, kid string) signingKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, priv: k}
}

func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func jwksOf(keys ...signingKey) []byte {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	raw, _ := json.Marshal(set)
	return raw
}

// sign makes a token with claims; kid "" leaves the header without one.
func (k signingKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claims returns valid claims for subject, overridden by extra (a nil value
// deletes the claim).
func claims(subject string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": testIssuer, "aud": []string{testAudience}, "sub": subject,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"roles": []string{"viewer"},
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// jwksServer serves a JWKS on loopback that the test can swap, counting
// requests.
type jwksServer struct {
	*httptest.Server
	doc  atomic.Pointer[[]byte]
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, tlsOn bool, keys ...signingKey) *jwksServer {
	s := &jwksServer{}
	s.set(keys...)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		switch r.URL.Path {
		case "/jwks":
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(*s.doc.Load())
		case "/moved":
			http.Redirect(w, r, "/jwks", http.StatusFound)
		case "/huge":
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 64<<10) + `"}`))
		default:
			http.NotFound(w, r)
		}
	})
	if tlsOn {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...signingKey) {
	raw := jwksOf(keys...)
	s.doc.Store(&raw)
}

func jwtConfig(url string) Config {
	return Config{JWT: JWTConfig{
		JWKSURL: url, Issuer: testIssuer, Audiences: []string{testAudience, "other-app"},
		MinRefreshInterval: Duration{50 * time.Millisecond},
	}, APIKeys: APIKeyConfig{Disabled: true}}
}

func refusedWith(t *testing.T, a *Authenticator, token, reason string) {
	t.Helper()
	id, err := a.Authenticate(context.Background(), bearer(token))
	var ue *UnauthenticatedError
	if !errors.As(err, &ue) {
		t.Fatalf("token accepted (%+v) or wrong error %v; want refusal %q", id, err, reason)
	}
	if !strings.Contains(ue.Reason, reason) {
		t.Fatalf("refused with %q, want %q", ue.Reason, reason)
	}
	if strings.Contains(err.Error(), token) || (len(token) > 40 && strings.Contains(err.Error(), token[len(token)-20:])) {
		t.Fatalf("the refusal echoes the token: %v", err)
	}
}

func TestJWT(t *testing.T) {
	rsa1, ec1 := newRSA(t, "rsa-1", 0), newEC(t, "ec-1")
	srv := newJWKSServer(t, false, rsa1, ec1)
	a := newAuthenticator(t, jwtConfig(srv.URL+"/jwks"), nil)
	ctx := context.Background()
	hour := time.Hour

	t.Run("valid RS256 and ES256", func(t *testing.T) {
		for _, k := range []signingKey{rsa1, ec1} {
			id, err := a.Authenticate(ctx, bearer(k.sign(t, claims("alice", map[string]any{"roles": []string{"operator", "idp-admin"}}))))
			if err != nil {
				t.Fatalf("%s: %v", k.alg, err)
			}
			if id.Subject != "alice" || id.Method != MethodJWT || len(id.Roles) != 1 || id.Roles[0] != RoleOperator {
				t.Fatalf("%s: identity %+v", k.alg, id)
			}
			if d := time.Until(id.Expires); d < 59*time.Minute || d > hour {
				t.Fatalf("expires in %s", d)
			}
		}
	})
	t.Run("any configured audience", func(t *testing.T) {
		if _, err := a.Authenticate(ctx, bearer(ec1.sign(t, claims("a", map[string]any{"aud": "other-app"})))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("within clock skew", func(t *testing.T) {
		tok := rsa1.sign(t, claims("a", map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix()}))
		if _, err := a.Authenticate(ctx, bearer(tok)); err != nil {
			t.Fatalf("a token 10 s past exp is within the 30 s skew: %v", err)
		}
	})

	now := time.Now()
	refusals := map[string]struct {
		token, reason string
	}{
		"expired":            {rsa1.sign(t, claims("a", map[string]any{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		"no expiry":          {rsa1.sign(t, claims("a", map[string]any{"exp": nil})), "no expiry"},
		"not yet valid":      {rsa1.sign(t, claims("a", map[string]any{"nbf": now.Add(time.Hour).Unix()})), "not valid yet"},
		"issued in future":   {rsa1.sign(t, claims("a", map[string]any{"iat": now.Add(time.Hour).Unix()})), "future"},
		"wrong audience":     {ec1.sign(t, claims("a", map[string]any{"aud": "billing"})), "audience"},
		"no audience":        {ec1.sign(t, claims("a", map[string]any{"aud": nil})), "audience"},
		"wrong issuer":       {rsa1.sign(t, claims("a", map[string]any{"iss": "https://evil.test"})), "issuer"},
		"no subject":         {rsa1.sign(t, claims("", nil)), "no subject"},
		"roles not strings":  {rsa1.sign(t, claims("a", map[string]any{"roles": []any{1, 2}})), "roles"},
		"malformed":          {"a.b.c", "malformed"},
		"garbage":            {"not-a-token", "invalid bearer token"},
		"tampered payload":   {tamper(rsa1.sign(t, claims("a", nil))), "invalid signature"},
		"signature stripped": {stripSig(rsa1.sign(t, claims("a", nil))), "invalid signature"},
	}
	for name, c := range refusals {
		t.Run(name, func(t *testing.T) { refusedWith(t, a, c.token, c.reason) })
	}

	t.Run("unknown key", func(t *testing.T) {
		ghost := newRSA(t, "ghost", 1)
		refusedWith(t, a, ghost.sign(t, claims("a", nil)), "unknown key")
		// The same key under a kid the JWKS knows: the signature fails.
		impostor := signingKey{kid: "rsa-1", alg: jose.RS256, priv: ghost.priv}
		refusedWith(t, a, impostor.sign(t, claims("a", nil)), "invalid signature")
	})

	t.Run("algorithm confusion", func(t *testing.T) {
		// HS256 keyed with the RSA public key (as PEM and as DER): the
		// classic attack on verifiers that let the token pick the algorithm.
		der, _ := x509.MarshalPKIXPublicKey(rsa1.priv.Public())
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		for _, secret := range [][]byte{der, pemKey} {
			hs := signingKey{kid: "rsa-1", alg: jose.HS256}
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader("kid", hs.kid))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Signed(s).Claims(claims("mallory", map[string]any{"roles": []string{"admin"}})).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			refusedWith(t, a, tok, `algorithm "HS256" is not accepted`)
		}
		// alg none, with and without a signature part.
		body := strings.Split(rsa1.sign(t, claims("mallory", map[string]any{"roles": []string{"admin"}})), ".")[1]
		for _, hdr := range []string{`{"alg":"none","kid":"rsa-1"}`, `{"alg":"None"}`, `{"alg":"NONE","typ":"JWT"}`} {
			h := base64.RawURLEncoding.EncodeToString([]byte(hdr))
			refusedWith(t, a, h+"."+body+".", "not accepted")
		}
		// ES256 claimed with the RSA key's kid, signed by another EC key.
		ec2 := newEC(t, "rsa-1")
		refusedWith(t, a, ec2.sign(t, claims("mallory", nil)), "unknown key")
		// An embedded JWK (attacker's key in the header) is never trusted.
		evil := newRSA(t, "", 2)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: evil.priv}, (&jose.SignerOptions{EmbedJWK: true}))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jwt.Signed(s).Claims(claims("mallory", nil)).Serialize()
		refusedWith(t, a, tok, "invalid signature")
	})

	t.Run("key rotation", func(t *testing.T) {
		rsa2 := newRSA(t, "rsa-2", 1)
		tok := rsa2.sign(t, claims("bob", nil))
		srv.set(rsa1, ec1, rsa2)
		testenv.Eventually(t, 3*time.Second, func() bool {
			_, err := a.Authenticate(ctx, bearer(tok))
			return err == nil
		}, "a token signed by the new key is accepted after the JWKS refresh")
		// Retired keys stop working once the JWKS drops them.
		old := rsa1.sign(t, claims("bob", nil))
		srv.set(rsa2)
		// An unknown kid triggers the refresh that reveals rsa-1 is gone.
		trigger := newRSA(t, "unknown", 2).sign(t, claims("x", nil))
		testenv.Eventually(t, 3*time.Second, func() bool {
			_, _ = a.Authenticate(ctx, bearer(trigger))
			_, err := a.Authenticate(ctx, bearer(old))
			return errors.Is(err, ErrUnauthenticated)
		}, "the retired key's tokens are refused")
	})
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	var c map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &c)
	c["roles"] = []string{"admin"}
	raw, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func stripSig(tok string) string { return tok[:strings.LastIndexByte(tok, '.')+1] }

func TestJWKSRefreshIsRateLimited(t *testing.T) {
	rsa1 := newRSA(t, "rsa-1", 0)
	srv := newJWKSServer(t, false, rsa1)
	cfg := jwtConfig(srv.URL + "/jwks")
	cfg.JWT.MinRefreshInterval = Duration{time.Hour}
	a := newAuthenticator(t, cfg, nil)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, bearer(rsa1.sign(t, claims("a", nil)))); err != nil {
		t.Fatal(err)
	}
	ghost := newRSA(t, "", 1)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := ghost
			k.kid = "ghost-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			_, _ = a.Authenticate(ctx, bearer(k.sign(t, claims("a", nil))))
		}()
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("50 tokens with unknown keys made %d JWKS requests; the first fetch should be the only one within the interval", n)
	}
}

func TestJWKSFetchLimits(t *testing.T) {
	rsa1 := newRSA(t, "rsa-1", 0)
	ctx := context.Background()

	t.Run("TLS with the configured CA", func(t *testing.T) {
		srv := newJWKSServer(t, true, rsa1)
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		cfg := jwtConfig(srv.URL + "/jwks")
		cfg.JWT.CAFile = writeFile(t, "ca.pem", string(ca))
		a := newAuthenticator(t, cfg, nil)
		if _, err := a.Authenticate(ctx, bearer(rsa1.sign(t, claims("a", nil)))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("TLS with an unknown CA", func(t *testing.T) {
		srv := newJWKSServer(t, true, rsa1)
		a := newAuthenticator(t, jwtConfig(srv.URL+"/jwks"), nil)
		refusedWith(t, a, rsa1.sign(t, claims("a", nil)), "unknown key")
	})
	t.Run("redirects are not followed", func(t *testing.T) {
		srv := newJWKSServer(t, false, rsa1)
		a := newAuthenticator(t, jwtConfig(srv.URL+"/moved"), nil)
		refusedWith(t, a, rsa1.sign(t, claims("a", nil)), "unknown key")
	})
	t.Run("oversized document", func(t *testing.T) {
		srv := newJWKSServer(t, false, rsa1)
		cfg := jwtConfig(srv.URL + "/huge")
		cfg.JWT.MaxJWKSBytes = 4096
		a := newAuthenticator(t, cfg, nil)
		refusedWith(t, a, rsa1.sign(t, claims("a", nil)), "unknown key")
	})
	t.Run("symmetric and private keys in the JWKS are skipped", func(t *testing.T) {
		priv, _ := json.Marshal(jose.JSONWebKey{Key: rsa1.priv, KeyID: "leaked", Algorithm: "RS256"})
		oct, _ := json.Marshal(jose.JSONWebKey{Key: []byte(strings.Repeat("k", 32)), KeyID: "hmac", Algorithm: "HS256"})
		good, _ := json.Marshal(newEC(t, "ec").jwk())
		ks, err := parseJWKS([]byte(`{"keys":[`+string(priv)+`,`+string(oct)+`,`+string(good)+`]}`), DefaultAlgorithms, quiet)
		if err != nil || len(ks.keys) != 1 || ks.keys[0].kid != "ec" {
			t.Fatalf("kept %+v, %v", ks, err)
		}
		if _, err := parseJWKS([]byte(`{"keys":[`+string(oct)+`]}`), DefaultAlgorithms, quiet); err == nil {
			t.Fatal("a JWKS of HMAC keys was accepted")
		}
	})
}

func TestJWKSFile(t *testing.T) {
	rsa1, rsa2 := newRSA(t, "rsa-1", 0), newRSA(t, "rsa-2", 1)
	path := writeFile(t, "jwks.json", string(jwksOf(rsa1)))
	cfg := Config{JWT: JWTConfig{JWKSFile: path, Issuer: testIssuer, Audiences: []string{testAudience},
		MinRefreshInterval: Duration{10 * time.Millisecond}}, APIKeys: APIKeyConfig{Disabled: true}}
	a := newAuthenticator(t, cfg, nil)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, bearer(rsa1.sign(t, claims("a", nil)))); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, jwksOf(rsa2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	tok2 := rsa2.sign(t, claims("a", nil))
	testenv.Eventually(t, 3*time.Second, func() bool {
		_, err := a.Authenticate(ctx, bearer(tok2))
		return err == nil
	}, "the rewritten JWKS file is read")
	refusedWith(t, a, rsa1.sign(t, claims("a", nil)), "unknown key")
	// A broken rewrite keeps the last good keys.
	if err := os.WriteFile(path, []byte(`{"keys":`), 0o600); err != nil {
		t.Fatal(err)
	}
	a.jwks.file.force()
	if _, err := a.Authenticate(ctx, bearer(tok2)); err != nil {
		t.Fatalf("a broken JWKS file dropped the keys: %v", err)
	}
}

func TestJWTClaimMapping(t *testing.T) {
	ec1 := newEC(t, "ec-1")
	path := writeFile(t, "jwks.json", string(jwksOf(ec1)))
	base := JWTConfig{JWKSFile: path, Issuer: testIssuer, Audiences: []string{testAudience}}
	ctx := context.Background()
	type want struct {
		subject string
		roles   []Role
		scope   Scope
		reason  string // refusal
	}
	cases := map[string]struct {
		cfg    func(*JWTConfig)
		claims map[string]any
		static []StaticIdentity
		want   want
	}{
		"nested roles and scope": {
			cfg: func(c *JWTConfig) {
				c.RolesClaim, c.TriggersClaim, c.SourcesClaim = "realm_access.roles", "tenant.triggers", "tenant.sources"
			},
			claims: map[string]any{"roles": nil, "realm_access": map[string]any{"roles": []string{"publisher", "offline_access", "operator"}},
				"tenant": map[string]any{"triggers": "shop-", "sources": []string{"/shop/", "/shop-eu/"}}},
			want: want{subject: "u", roles: []Role{RolePublisher, RoleOperator}, scope: Scope{Triggers: []string{"shop-"}, Sources: []string{"/shop/", "/shop-eu/"}}},
		},
		"namespaced claim with dots": {
			cfg:    func(c *JWTConfig) { c.RolesClaim = "https://switchyard.io/roles" },
			claims: map[string]any{"roles": nil, "https://switchyard.io/roles": "viewer publisher"},
			want:   want{subject: "u", roles: []Role{RolePublisher, RoleViewer}},
		},
		"role prefix": {
			cfg:    func(c *JWTConfig) { c.RolePrefix = "switchyard-" },
			claims: map[string]any{"roles": []string{"admin", "switchyard-viewer", "switchyard-root"}},
			want:   want{subject: "u", roles: []Role{RoleViewer}},
		},
		"custom subject claim": {
			cfg:    func(c *JWTConfig) { c.SubjectClaim = "azp" },
			claims: map[string]any{"azp": "ci-pipeline"},
			want:   want{subject: "ci-pipeline", roles: []Role{RoleViewer}},
		},
		"no roles claim, static identity": {
			claims: map[string]any{"roles": nil},
			static: []StaticIdentity{{Subject: "u", Method: MethodJWT, Roles: []Role{RolePublisher}, Scope: Scope{Types: []string{"com.u."}}}},
			want:   want{subject: "u", roles: []Role{RolePublisher}, scope: Scope{Types: []string{"com.u."}}},
		},
		"no roles claim, mtls identity of that name is not used": {
			claims: map[string]any{"roles": nil},
			static: []StaticIdentity{{Subject: "u", Method: MethodMTLS, Roles: []Role{RoleAdmin}}},
			want:   want{subject: "u"},
		},
		"roles claim wins over static identity": {
			claims: map[string]any{"roles": []string{"viewer"}},
			static: []StaticIdentity{{Subject: "u", Method: MethodJWT, Roles: []Role{RoleAdmin}}},
			want:   want{subject: "u", roles: []Role{RoleViewer}},
		},
		"empty scope claim is refused": {
			cfg:    func(c *JWTConfig) { c.TriggersClaim = "triggers" },
			claims: map[string]any{"triggers": []string{}},
			want:   want{reason: "claim triggers is empty"},
		},
		"invalid trigger prefix is refused": {
			cfg:    func(c *JWTConfig) { c.TriggersClaim = "triggers" },
			claims: map[string]any{"triggers": []string{"Shop_"}},
			want:   want{reason: "invalid scope"},
		},
		"absent scope claim is unrestricted": {
			cfg:  func(c *JWTConfig) { c.TriggersClaim = "triggers" },
			want: want{subject: "u", roles: []Role{RoleViewer}},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			jc := base
			if c.cfg != nil {
				c.cfg(&jc)
			}
			cfg := Config{JWT: jc, Identities: c.static, APIKeys: APIKeyConfig{Disabled: true}}
			if len(c.static) > 0 && c.static[0].Method == MethodMTLS {
				cfg.MTLS.ClientCAFile = writeFile(t, "ca.pem", string(newTestCA(t, "ca").CertPEM))
			}
			a := newAuthenticator(t, cfg, nil)
			id, err := a.Authenticate(ctx, bearer(ec1.sign(t, claims("u", c.claims))))
			if c.want.reason != "" {
				if err == nil || !strings.Contains(err.Error(), c.want.reason) {
					t.Fatalf("got %+v, %v; want refusal %q", id, err, c.want.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotRoles := append([]Role(nil), id.Roles...)
			if id.Subject != c.want.subject || !sameRoles(gotRoles, c.want.roles) || !sameScope(id.Scope, c.want.scope) {
				t.Fatalf("identity %+v, want %+v", id, c.want)
			}
		})
	}
}

func sameRoles(a, b []Role) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		found := false
		for _, s := range b {
			found = found || r == s
		}
		if !found {
			return false
		}
	}
	return true
}

func sameScope(a, b Scope) bool {
	eq := func(x, y []string) bool { return strings.Join(x, "\x00") == strings.Join(y, "\x00") }
	return eq(a.Sources, b.Sources) && eq(a.Types, b.Types) && eq(a.Triggers, b.Triggers)
}
