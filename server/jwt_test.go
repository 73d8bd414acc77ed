package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/server"
)

const (
	jwtIssuer   = "https://idp.test"
	jwtAudience = "switchyard"
)

type ecKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newECKey(t *testing.T, kid string) ecKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return ecKey{kid: kid, priv: k}
}

func (k ecKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	require.NoError(t, err)
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

func jwtClaims(subject string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": jwtIssuer, "aud": []string{jwtAudience}, "sub": subject,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "roles": []string{"viewer"},
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// TestJWTAuthentication: a server whose config file turns JWTs on (JWKS
// served on loopback by the test) takes valid tokens, with the scope their
// claims give, and refuses an expired one, one for another audience and
// one signed by a key the JWKS does not hold.
func TestJWTAuthentication(t *testing.T) {
	known, unknown := newECKey(t, "k1"), newECKey(t, "k1") // same kid, other key
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: known.priv.Public(), KeyID: known.kid, Algorithm: "ES256", Use: "sig"}}})
	require.NoError(t, err)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(jwks.Close)

	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
auth:
  jwt:
    jwks_url: `+jwks.URL+`
    issuer: `+jwtIssuer+`
    audiences: [`+jwtAudience+`]
    clock_skew: 5s
    triggers_claim: tenant_triggers
`), 0o600))
	fc, err := server.LoadFile(file)
	require.NoError(t, err)
	e := startServer(t, testenv.Real(t), func(c *server.Config) { fc.Apply(c) })
	ctx := context.Background()
	for _, name := range []string{"a-1", "b-1"} {
		_, err := e.srv.Router().Store().PutTrigger(ctx, &switchyardv1.Trigger{Name: name,
			Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "127.0.0.1:1"}}}, store.PutApply, 0)
		require.NoError(t, err)
	}

	viewer := e.as(t, known.sign(t, jwtClaims("alice", nil)))
	// The JWKS is fetched in the background: tokens work once it is in.
	testenv.Eventually(t, 10*time.Second, func() bool { _, err := viewer.ListTriggers(ctx); return err == nil }, "JWKS fetched")
	list, err := viewer.ListTriggers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a-1", "b-1"}, names(list))
	tenant := e.as(t, known.sign(t, jwtClaims("bob", map[string]any{"tenant_triggers": []string{"a-"}})))
	list, err = tenant.ListTriggers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a-1"}, names(list), "the triggers claim scopes the token")
	_, err = viewer.DeleteTrigger(ctx, "a-1", false)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "the roles claim holds viewer only")

	for name, tok := range map[string]string{
		"expired":         known.sign(t, jwtClaims("alice", map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix()})),
		"other audience":  known.sign(t, jwtClaims("alice", map[string]any{"aud": []string{"another-app"}})),
		"unknown key":     unknown.sign(t, jwtClaims("alice", nil)),
		"other issuer":    known.sign(t, jwtClaims("alice", map[string]any{"iss": "https://evil.test"})),
		"not yet valid":   known.sign(t, jwtClaims("alice", map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})),
		"garbled":         "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
		"admin role, bad": unknown.sign(t, jwtClaims("mallory", map[string]any{"roles": []string{"admin"}})),
	} {
		_, err := e.as(t, tok).ListTriggers(ctx)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%s: %v", name, err)
		st, _, _ := e.postAs(t, tok, "/events", "application/json", binaryEvent("1", "/a", "t"), []byte(`{}`))
		require.Equal(t, http.StatusUnauthorized, st, name)
	}
}
