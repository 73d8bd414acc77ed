package auth

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testAdminToken = "bootstrap-0123456789abcdef0123456789abcdef"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigEnabled(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		want bool
	}{
		"zero":               {Config{}, false},
		"api keys tuned":     {Config{APIKeys: APIKeyConfig{CacheSize: 5}}, false},
		"admin token":        {Config{AdminToken: testAdminToken}, true},
		"admin token file":   {Config{AdminTokenFile: "/x"}, true},
		"jwks url":           {Config{JWT: JWTConfig{JWKSURL: "https://idp/jwks"}}, true},
		"jwks file":          {Config{JWT: JWTConfig{JWKSFile: "/x"}}, true},
		"client ca":          {Config{MTLS: MTLSConfig{ClientCAFile: "/x"}}, true},
		"issuer without key": {Config{JWT: JWTConfig{Issuer: "x"}}, false},
	}
	for name, c := range cases {
		if got := c.cfg.Enabled(); got != c.want {
			t.Errorf("%s: Enabled() = %v, want %v", name, got, c.want)
		}
	}
	t.Setenv(EnvAdminToken, testAdminToken)
	var c Config
	c.ApplyEnv()
	if c.AdminToken != testAdminToken || !c.Enabled() {
		t.Fatal("ApplyEnv did not take SWITCHYARD_ADMIN_TOKEN")
	}
	raw, _ := json.Marshal(c)
	if strings.Contains(string(raw), testAdminToken) {
		t.Fatal("the admin token is serialised")
	}
}

func TestConfigValidateReportsEveryField(t *testing.T) {
	dir := t.TempDir()
	short := writeFile(t, "short", "abc\n")
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	cfg := Config{
		KeyPrefix:      "sy{x}",
		AdminToken:     "short",
		AdminTokenFile: short,
		APIKeys:        APIKeyConfig{RevocationDelay: Duration{time.Millisecond}, CacheSize: -1},
		JWT: JWTConfig{
			JWKSURL:    "http://idp.example.com/jwks",
			JWKSFile:   filepath.Join(dir, "missing.json"),
			Audiences:  []string{""},
			Algorithms: []string{"RS256", "HS256", "none", "XX1"},
			ClockSkew:  Duration{time.Hour},
			RolesClaim: "realm..roles",
		},
		MTLS: MTLSConfig{ClientCAFile: notPEM},
		Identities: []StaticIdentity{
			{Subject: "", Roles: []Role{"root"}},
			{Subject: "a", Method: "saml", Roles: []Role{RoleViewer}},
			{Subject: "b", Roles: []Role{RoleViewer}, Scope: Scope{Triggers: []string{""}}},
			{Subject: "b", Method: MethodMTLS, Roles: []Role{RoleViewer}},
		},
	}
	err := cfg.Validate()
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	got := map[string]bool{}
	for _, e := range fe {
		got[e.Path] = true
		if strings.Contains(e.Msg, "short") && e.Path == EnvAdminToken {
			t.Errorf("the admin token is echoed: %s", e.Msg)
		}
	}
	for _, p := range []string{
		"key_prefix", "admin_token_file", EnvAdminToken, "api_keys.revocation_delay", "api_keys.cache_size",
		"jwt.jwks_url", "jwt.jwks_file", "jwt.issuer", "jwt.audiences[0]", "jwt.algorithms[1]", "jwt.algorithms[2]",
		"jwt.algorithms[3]", "jwt.clock_skew", "jwt.roles_claim", "mtls.client_ca_file",
		"identities[0].subject", "identities[0].roles[0]", "identities[1].method", "identities[2].scope.triggers[0]",
		"identities[3].subject",
	} {
		if !got[p] {
			t.Errorf("no error for %s", p)
		}
	}
	if got["jwt.algorithms[0]"] {
		t.Error("RS256 refused")
	}
	if t.Failed() {
		t.Logf("errors: %v", err)
	}
	if !strings.Contains(err.Error(), "HMAC") {
		t.Errorf("the HS256 refusal should say why: %v", err)
	}
}

func TestConfigValidateAccepts(t *testing.T) {
	tok := writeFile(t, "admin", "  "+testAdminToken+"\n")
	ok := []Config{
		{},
		{AdminToken: testAdminToken},
		{AdminTokenFile: tok},
		{JWT: JWTConfig{JWKSURL: "https://idp.example.com/jwks", Issuer: "https://idp", Audiences: []string{"switchyard"}}},
		{JWT: JWTConfig{JWKSURL: "http://127.0.0.1:8080/jwks", Issuer: "i", Audiences: []string{"a"}}},
		{JWT: JWTConfig{JWKSURL: "http://localhost/jwks", Issuer: "i", Audiences: []string{"a"},
			Algorithms: []string{"ES256"}}, Identities: []StaticIdentity{{Subject: "svc", Method: MethodJWT, Roles: []Role{RolePublisher}}}},
	}
	for i, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("config %d: %v", i, err)
		}
	}
	// Validate works on a copy: the caller's config keeps its zero fields.
	c := Config{}
	_ = c.Validate()
	if c.KeyPrefix != "" || c.APIKeys.CacheSize != 0 {
		t.Fatal("Validate changed its receiver")
	}
	bad := map[string]Config{
		"jwt over plain http":      {JWT: JWTConfig{JWKSURL: "http://idp.example.com/jwks", Issuer: "i", Audiences: []string{"a"}}},
		"jwt with credentials":     {JWT: JWTConfig{JWKSURL: "https://u:p@idp/jwks", Issuer: "i", Audiences: []string{"a"}}},
		"jwt without audience":     {JWT: JWTConfig{JWKSURL: "https://idp/jwks", Issuer: "i"}},
		"jwt identity without jwt": {AdminToken: testAdminToken, Identities: []StaticIdentity{{Subject: "s", Method: MethodJWT, Roles: []Role{RoleViewer}}}},
		"mtls identity without ca": {AdminToken: testAdminToken, Identities: []StaticIdentity{{Subject: "s", Roles: []Role{RoleViewer}}}},
		"admin token like a key":   {AdminToken: APIKeyPrefix + strings.Repeat("a", 40)},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var c Config
	err := json.Unmarshal([]byte(`{"api_keys":{"revocation_delay":"250ms"},"jwt":{"clock_skew":"1m","audiences":["a"]}}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKeys.RevocationDelay.Duration != 250*time.Millisecond || c.JWT.ClockSkew.Duration != time.Minute {
		t.Fatalf("parsed %+v", c)
	}
	if err := json.Unmarshal([]byte(`{"jwt":{"clock_skew":"soon"}}`), &c); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("bad duration: %v", err)
	}
	out, _ := json.Marshal(Duration{1500 * time.Millisecond})
	if string(out) != `"1.5s"` {
		t.Fatalf("marshalled %s", out)
	}
	c = Config{}
	c.SetDefaults()
	if c.KeyPrefix != DefaultKeyPrefix || !slices.Equal(c.JWT.Algorithms, DefaultAlgorithms) || c.JWT.RolesClaim != "roles" {
		t.Fatalf("defaults %+v", c)
	}
}
