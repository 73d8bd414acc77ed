package auth

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// EnvAdminToken is the environment variable holding the bootstrap admin
// token (Config.AdminToken; see ApplyEnv).
const EnvAdminToken = "SWITCHYARD_ADMIN_TOKEN"

// Defaults.
const (
	DefaultKeyPrefix = "sy"
	// DefaultRevocationDelay bounds how long a revoked or expired API key
	// stays usable on a replica that still reaches Redis.
	DefaultRevocationDelay = time.Second
	// DefaultKeyCacheSize is how many API key lookups (found or not) each
	// replica keeps in memory.
	DefaultKeyCacheSize = 10000
	// DefaultClockSkew is how far the token issuer's clock may be from ours.
	// NTP keeps clocks within a second; this covers a badly synchronised
	// host without stretching a token's life much.
	DefaultClockSkew = 30 * time.Second
	// DefaultJWKSRefresh is how often the JWKS is fetched again on its own.
	DefaultJWKSRefresh = 15 * time.Minute
	// DefaultJWKSMinRefresh is the shortest time between two fetches, so a
	// flood of tokens naming unknown keys costs the identity provider at
	// most one request per this interval.
	DefaultJWKSMinRefresh = 10 * time.Second
	// DefaultJWKSFetchTimeout bounds one JWKS fetch.
	DefaultJWKSFetchTimeout = 5 * time.Second
	// DefaultMaxJWKSBytes bounds a JWKS document (a few keys take a few KiB).
	DefaultMaxJWKSBytes = 1 << 20
	// DefaultMaxTokenBytes bounds a bearer token before anything parses it.
	DefaultMaxTokenBytes = 16 << 10
	// DefaultSubjectClaim and DefaultRolesClaim are the claim paths used
	// when none are configured.
	DefaultSubjectClaim = "sub"
	DefaultRolesClaim   = "roles"
	// MinAdminTokenLength is the shortest bootstrap admin token accepted:
	// `openssl rand -hex 16` is long enough.
	MinAdminTokenLength = 32
)

// DefaultAlgorithms are the JWT signature algorithms accepted unless
// JWTConfig.Algorithms says otherwise: every asymmetric algorithm go-jose
// verifies. HMAC (HS*) is never accepted, since a public key must never act
// as a shared secret, nor is "none".
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Config selects and tunes the authentication methods. Any combination may
// be on; Enabled reports whether any is. The zero Config is "off".
type Config struct {
	// KeyPrefix is the Redis key prefix (the server's --key-prefix); API keys
	// live under "<prefix>:{auth}:". Default "sy".
	KeyPrefix string `json:"-"`
	// AdminToken is the bootstrap admin token, normally from
	// SWITCHYARD_ADMIN_TOKEN (ApplyEnv). Never written to a file or log.
	AdminToken string `json:"-"`
	// AdminTokenFile names a file holding the bootstrap admin token (one
	// line; surrounding white space is ignored). It is read again when it
	// changes, and an unreadable or emptied file turns the token off.
	AdminTokenFile string `json:"admin_token_file,omitempty"`
	// APIKeys tunes API keys, which are verified whenever authentication is
	// on.
	APIKeys APIKeyConfig `json:"api_keys,omitempty"`
	// JWT turns on JWT bearer tokens when it names a JWKS.
	JWT JWTConfig `json:"jwt,omitempty"`
	// MTLS turns on client certificates when it names a client CA.
	MTLS MTLSConfig `json:"mtls,omitempty"`
	// Identities map certificate subjects (and JWT subjects whose token
	// carries no roles claim) to roles and a scope.
	Identities []StaticIdentity `json:"identities,omitempty"`
}

// APIKeyConfig tunes API key verification.
type APIKeyConfig struct {
	// Disabled refuses every API key. Keys are otherwise verified whenever
	// authentication is on: the bootstrap admin exists to create them, and
	// keys in Redis are inert while authentication is off.
	Disabled bool `json:"disabled,omitempty"`
	// RevocationDelay bounds how long a revoked key stays usable on a
	// replica: each replica reads the keys' revision this often (four times
	// per delay) and trusts its cache only while that read is recent.
	// Default DefaultRevocationDelay.
	RevocationDelay Duration `json:"revocation_delay,omitempty"`
	// CacheSize bounds the in-memory cache of key lookups. Default
	// DefaultKeyCacheSize.
	CacheSize int `json:"cache_size,omitempty"`
}

// JWTConfig sets up JWT bearer tokens. Exactly one of JWKSURL and JWKSFile
// turns them on; Issuer and Audiences are then required.
type JWTConfig struct {
	// JWKSURL is where the identity provider publishes its keys (https; http
	// only to a loopback address).
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSFile is a JWKS on disk, read again when it changes.
	JWKSFile string `json:"jwks_file,omitempty"`
	// CAFile holds PEM certificates to trust for JWKSURL instead of the
	// system's roots.
	CAFile string `json:"ca_file,omitempty"`
	// Issuer must equal the token's "iss".
	Issuer string `json:"issuer,omitempty"`
	// Audiences: the token's "aud" must contain one of them.
	Audiences []string `json:"audiences,omitempty"`
	// Algorithms accepted; default DefaultAlgorithms. HS* and none are
	// refused.
	Algorithms []string `json:"algorithms,omitempty"`
	// ClockSkew is allowed on exp, nbf and iat. Default DefaultClockSkew.
	ClockSkew Duration `json:"clock_skew,omitempty"`
	// RefreshInterval: the JWKS is fetched again this often. Default
	// DefaultJWKSRefresh.
	RefreshInterval Duration `json:"refresh_interval,omitempty"`
	// MinRefreshInterval is the shortest time between two fetches, also
	// those a token with an unknown key id triggers. Default
	// DefaultJWKSMinRefresh.
	MinRefreshInterval Duration `json:"min_refresh_interval,omitempty"`
	// FetchTimeout bounds one fetch. Default DefaultJWKSFetchTimeout.
	FetchTimeout Duration `json:"fetch_timeout,omitempty"`
	// MaxJWKSBytes bounds the JWKS document. Default DefaultMaxJWKSBytes.
	MaxJWKSBytes int64 `json:"max_jwks_bytes,omitempty"`
	// MaxTokenBytes bounds a token. Default DefaultMaxTokenBytes.
	MaxTokenBytes int `json:"max_token_bytes,omitempty"`
	// SubjectClaim is the claim path of the subject. Default "sub".
	SubjectClaim string `json:"subject_claim,omitempty"`
	// RolesClaim is the claim path of the roles: a list of strings, or one
	// string of names separated by spaces or commas. Default "roles".
	// A path is a claim name, or names joined by dots into nested objects
	// ("realm_access.roles"); a claim whose own name contains dots
	// ("https://example.com/roles") is found too.
	RolesClaim string `json:"roles_claim,omitempty"`
	// RolePrefix, when set, keeps only the role values that start with it,
	// without it ("switchyard-" turns "switchyard-admin" into "admin"), so an
	// identity provider's unrelated roles never mean anything here. Values
	// that name no role are ignored either way.
	RolePrefix string `json:"role_prefix,omitempty"`
	// SourcesClaim, TypesClaim and TriggersClaim are the claim paths of the
	// scope's prefixes (same shapes as roles). Empty: not read, so tokens are
	// unrestricted in that dimension. A configured claim that a token lacks
	// also leaves it unrestricted (platform tokens need not carry tenant
	// claims); a claim present but empty, or holding an invalid prefix, makes
	// the token invalid.
	SourcesClaim  string `json:"sources_claim,omitempty"`
	TypesClaim    string `json:"types_claim,omitempty"`
	TriggersClaim string `json:"triggers_claim,omitempty"`
}

// MTLSConfig sets up client certificates.
type MTLSConfig struct {
	// ClientCAFile holds the PEM certificates that sign client certificates.
	ClientCAFile string `json:"client_ca_file,omitempty"`
}

// StaticIdentity gives roles and a scope to a subject proven by a client
// certificate or, with Method "jwt", by a JWT that carries no roles claim.
type StaticIdentity struct {
	// Subject is the certificate's first URI SAN, else its common name; or
	// the JWT's subject claim.
	Subject string `json:"subject"`
	// Method is "mtls" (the default) or "jwt". Subjects of the two methods
	// are separate namespaces, so a certificate named like an identity
	// provider's user never takes that user's roles.
	Method Method `json:"method,omitempty"`
	Roles  []Role `json:"roles"`
	Scope  Scope  `json:"scope,omitempty"`
}

// ApplyEnv sets AdminToken from SWITCHYARD_ADMIN_TOKEN when that is set.
func (c *Config) ApplyEnv() {
	if v, ok := os.LookupEnv(EnvAdminToken); ok && v != "" {
		c.AdminToken = v
	}
}

// Enabled reports whether any method is configured: a bootstrap admin token
// (variable or file), a JWKS, or a client CA. When it is false the server
// gives every caller the Anonymous identity.
func (c Config) Enabled() bool {
	return c.AdminToken != "" || c.AdminTokenFile != "" || c.JWT.configured() || c.MTLS.ClientCAFile != ""
}

func (j JWTConfig) configured() bool { return j.JWKSURL != "" || j.JWKSFile != "" }

// SetDefaults fills the zero fields that have defaults.
func (c *Config) SetDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.APIKeys.RevocationDelay.Duration == 0 {
		c.APIKeys.RevocationDelay.Duration = DefaultRevocationDelay
	}
	if c.APIKeys.CacheSize == 0 {
		c.APIKeys.CacheSize = DefaultKeyCacheSize
	}
	j := &c.JWT
	if len(j.Algorithms) == 0 {
		j.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	if j.ClockSkew.Duration == 0 {
		j.ClockSkew.Duration = DefaultClockSkew
	}
	if j.RefreshInterval.Duration == 0 {
		j.RefreshInterval.Duration = DefaultJWKSRefresh
	}
	if j.MinRefreshInterval.Duration == 0 {
		j.MinRefreshInterval.Duration = DefaultJWKSMinRefresh
	}
	if j.FetchTimeout.Duration == 0 {
		j.FetchTimeout.Duration = DefaultJWKSFetchTimeout
	}
	if j.MaxJWKSBytes == 0 {
		j.MaxJWKSBytes = DefaultMaxJWKSBytes
	}
	if j.MaxTokenBytes == 0 {
		j.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if j.SubjectClaim == "" {
		j.SubjectClaim = DefaultSubjectClaim
	}
	if j.RolesClaim == "" {
		j.RolesClaim = DefaultRolesClaim
	}
	for i := range c.Identities {
		if c.Identities[i].Method == "" {
			c.Identities[i].Method = MethodMTLS
		}
	}
}

// Validate checks the configuration as given (defaults are applied to a copy
// first) and reports every problem as a FieldError in a FieldErrors, with
// paths as in the configuration file ("jwt.issuer", "identities[2].roles[0]").
// It reads the files the configuration names (admin token, client CA, JWKS
// file, JWKS CA), so that --check-config finds a missing one; it fetches
// nothing.
func (c Config) Validate() error {
	c.Identities = slices.Clone(c.Identities)
	c.SetDefaults()
	var errs FieldErrors
	if strings.ContainsAny(c.KeyPrefix, "{}: \t\r\n") {
		errs.add("key_prefix", "%q may not contain braces, ':' or white space (they would break the key layout)", c.KeyPrefix)
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		errs.add("admin_token_file", "set %s or admin_token_file, not both", EnvAdminToken)
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenLength {
		errs.add(EnvAdminToken, "the admin token needs at least %d characters, got %d", MinAdminTokenLength, len(c.AdminToken))
	}
	if LooksLikeAPIKey(c.AdminToken) {
		errs.add(EnvAdminToken, "the admin token may not begin with %q (API keys do)", APIKeyPrefix)
	}
	if c.AdminTokenFile != "" {
		if tok, err := readAdminToken(c.AdminTokenFile); err != nil {
			errs.add("admin_token_file", "%v", err)
		} else if len(tok) < MinAdminTokenLength {
			errs.add("admin_token_file", "the admin token needs at least %d characters, the file holds %d", MinAdminTokenLength, len(tok))
		} else if LooksLikeAPIKey(tok) {
			errs.add("admin_token_file", "the admin token may not begin with %q (API keys do)", APIKeyPrefix)
		}
	}
	if d := c.APIKeys.RevocationDelay.Duration; d < 100*time.Millisecond || d > time.Minute {
		errs.add("api_keys.revocation_delay", "must be between 100ms and 1m, got %s", d)
	}
	if n := c.APIKeys.CacheSize; n < 1 || n > 1_000_000 {
		errs.add("api_keys.cache_size", "must be between 1 and 1000000, got %d", n)
	}
	c.JWT.validate(&errs)
	if c.MTLS.ClientCAFile != "" {
		if _, err := loadCertPool(c.MTLS.ClientCAFile); err != nil {
			errs.add("mtls.client_ca_file", "%v", err)
		}
	}
	seen := map[string]int{}
	for i, si := range c.Identities {
		p := fmt.Sprintf("identities[%d]", i)
		switch {
		case si.Subject == "":
			errs.add(p+".subject", "required")
		case len(si.Subject) > 1024:
			errs.add(p+".subject", "at most 1024 bytes")
		}
		switch si.Method {
		case MethodMTLS:
			if c.MTLS.ClientCAFile == "" {
				errs.add(p+".method", "mtls identities need mtls.client_ca_file")
			}
		case MethodJWT:
			if !c.JWT.configured() {
				errs.add(p+".method", "jwt identities need jwt.jwks_url or jwt.jwks_file")
			}
		default:
			errs.add(p+".method", "%q is not mtls or jwt", si.Method)
		}
		k := string(si.Method) + "\x00" + si.Subject
		if j, dup := seen[k]; dup {
			errs.add(p+".subject", "%q is already identities[%d]", si.Subject, j)
		} else {
			seen[k] = i
		}
		validateRoles(&errs, p+".roles", si.Roles)
		si.Scope.validate(&errs, p+".scope")
	}
	return errs.err()
}

func (j JWTConfig) validate(errs *FieldErrors) {
	if !j.configured() {
		if j.Issuer != "" || len(j.Audiences) > 0 || j.CAFile != "" {
			errs.add("jwt.jwks_url", "set jwks_url or jwks_file to turn JWT tokens on")
		}
		return
	}
	if j.JWKSURL != "" && j.JWKSFile != "" {
		errs.add("jwt.jwks_file", "set jwks_url or jwks_file, not both")
	}
	if j.JWKSURL != "" {
		if err := checkJWKSURL(j.JWKSURL); err != nil {
			errs.add("jwt.jwks_url", "%v", err)
		}
	}
	if j.CAFile != "" {
		if j.JWKSURL == "" {
			errs.add("jwt.ca_file", "only used with jwks_url")
		} else if _, err := loadCertPool(j.CAFile); err != nil {
			errs.add("jwt.ca_file", "%v", err)
		}
	}
	if j.JWKSFile != "" {
		if raw, err := os.ReadFile(j.JWKSFile); err != nil {
			errs.add("jwt.jwks_file", "%v", err)
		} else if _, err := parseJWKS(raw, j.Algorithms, nil); err != nil {
			errs.add("jwt.jwks_file", "%v", err)
		}
	}
	if j.Issuer == "" {
		errs.add("jwt.issuer", "required: the issuer tokens must name in \"iss\"")
	}
	if len(j.Audiences) == 0 {
		errs.add("jwt.audiences", "required: at least one audience tokens must name in \"aud\"")
	}
	for i, a := range j.Audiences {
		if a == "" {
			errs.add(fmt.Sprintf("jwt.audiences[%d]", i), "cannot be empty")
		}
	}
	for i, a := range j.Algorithms {
		p := fmt.Sprintf("jwt.algorithms[%d]", i)
		switch {
		case strings.EqualFold(a, "none"):
			errs.add(p, "unsigned tokens are never accepted")
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			errs.add(p, "%s is HMAC: a shared secret is not a public key, so it is never accepted", a)
		case !slices.Contains(DefaultAlgorithms, a):
			errs.add(p, "%q is not one of %s", a, strings.Join(DefaultAlgorithms, ", "))
		}
	}
	durations := []struct {
		path     string
		d        time.Duration
		min, max time.Duration
	}{
		{"jwt.clock_skew", j.ClockSkew.Duration, time.Nanosecond, 5 * time.Minute},
		{"jwt.refresh_interval", j.RefreshInterval.Duration, time.Second, 24 * time.Hour},
		{"jwt.min_refresh_interval", j.MinRefreshInterval.Duration, time.Millisecond, time.Hour},
		{"jwt.fetch_timeout", j.FetchTimeout.Duration, time.Millisecond, time.Minute},
	}
	for _, d := range durations {
		if d.d < d.min || d.d > d.max {
			errs.add(d.path, "must be between %s and %s, got %s", d.min, d.max, d.d)
		}
	}
	if j.MaxJWKSBytes < 1<<10 || j.MaxJWKSBytes > 16<<20 {
		errs.add("jwt.max_jwks_bytes", "must be between 1024 and 16777216, got %d", j.MaxJWKSBytes)
	}
	if j.MaxTokenBytes < 1<<10 || j.MaxTokenBytes > 64<<10 {
		errs.add("jwt.max_token_bytes", "must be between 1024 and 65536, got %d", j.MaxTokenBytes)
	}
	for _, c := range []struct{ path, v string }{
		{"jwt.subject_claim", j.SubjectClaim}, {"jwt.roles_claim", j.RolesClaim},
		{"jwt.sources_claim", j.SourcesClaim}, {"jwt.types_claim", j.TypesClaim}, {"jwt.triggers_claim", j.TriggersClaim},
	} {
		if c.v != "" && (strings.HasPrefix(c.v, ".") || strings.HasSuffix(c.v, ".") || strings.Contains(c.v, "..")) {
			errs.add(c.path, "%q has an empty path segment", c.v)
		}
	}
}

// checkJWKSURL allows https anywhere and http to loopback only (an identity
// provider beside the server); keys fetched in clear over a network could be
// swapped by anyone on the path.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not supported")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("http is allowed only to a loopback address; use https")
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loadCertPool reads PEM certificates from path; at least one is needed.
func loadCertPool(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Duration is a time.Duration written as a Go duration string ("500ms",
// "30s", "15m") in configuration files.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string like \"500ms\", \"30s\" or \"15m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, like 500ms, 30s or 15m", s)
	}
	d.Duration = v
	return nil
}
