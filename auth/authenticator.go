package auth

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Authenticator turns presented credentials into an identity with the
// methods its Config turns on. It is safe for concurrent use. Close stops
// its background work (JWKS refresh, key cache reads).
type Authenticator struct {
	cfg     Config
	enabled bool
	log     *slog.Logger

	store *KeyStore    // nil without Redis
	keys  *keyVerifier // nil when API keys are off
	admin *adminToken  // nil without a bootstrap token
	jwt   *jwtVerifier
	jwks  *jwksSource
	mtls  *mtlsVerifier

	closeOnce sync.Once
}

// New builds an Authenticator. rdb holds the API keys; it may be nil only
// when authentication is off or API keys are disabled. The configuration is
// validated first (errors are a FieldErrors). A JWKS URL is fetched in the
// background, so New does not wait for the identity provider: tokens are
// refused as signed by an unknown key until it answers.
func New(cfg Config, rdb redis.UniversalClient, logger *slog.Logger) (*Authenticator, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "auth")
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{cfg: cfg, enabled: cfg.Enabled(), log: logger}
	if rdb != nil {
		a.store = NewKeyStore(rdb, cfg.KeyPrefix)
	}
	if !a.enabled {
		return a, nil
	}
	if !cfg.APIKeys.Disabled {
		if rdb == nil {
			return nil, FieldErrors{{Path: "api_keys", Msg: "API keys need the Redis client (or set api_keys.disabled)"}}
		}
		a.keys = newKeyVerifier(a.store, cfg.APIKeys.RevocationDelay.Duration, cfg.APIKeys.CacheSize)
	}
	var err error
	if cfg.AdminToken != "" || cfg.AdminTokenFile != "" {
		if a.admin, err = newAdminToken(cfg.AdminToken, cfg.AdminTokenFile, logger); err != nil {
			a.Close()
			return nil, err
		}
	}
	static := map[Method]map[string]StaticIdentity{MethodMTLS: {}, MethodJWT: {}}
	for _, si := range cfg.Identities {
		static[si.Method][si.Subject] = si
	}
	if cfg.MTLS.ClientCAFile != "" {
		if a.mtls, err = newMTLSVerifier(cfg.MTLS.ClientCAFile, static[MethodMTLS]); err != nil {
			a.Close()
			return nil, err
		}
	}
	if cfg.JWT.configured() {
		if a.jwks, err = newJWKSSource(cfg.JWT, logger); err != nil {
			a.Close()
			return nil, err
		}
		a.jwt = newJWTVerifier(cfg.JWT, static[MethodJWT], a.jwks)
	}
	return a, nil
}

// Enabled reports whether authentication is on (Config.Enabled). When it is
// off, Authenticate gives every caller the Anonymous identity.
func (a *Authenticator) Enabled() bool { return a.enabled }

// Keys returns the API key store (for `token create/list/revoke`), nil when
// New got no Redis client.
func (a *Authenticator) Keys() *KeyStore { return a.store }

// Authenticate returns the caller's identity (see Verifier).
//
// Which method applies is decided by what was presented, never by trying
// one after another with the same secret:
//   - a bearer token beginning "syk_" is an API key;
//   - another bearer token is the bootstrap admin token if it equals it,
//     else a JWT if JWTs are on and it has a JWT's shape;
//   - without a bearer token, a client certificate is used;
//   - with both, the bearer token decides (the certificate then only
//     protected the connection), and a bad token is not rescued by the
//     certificate.
func (a *Authenticator) Authenticate(ctx context.Context, c Credentials) (*Identity, error) {
	if !a.enabled {
		id := Anonymous()
		id.Remote = c.Remote
		return id, nil
	}
	id, err := a.authenticate(ctx, c)
	if err != nil {
		return nil, err
	}
	id.Remote = c.Remote
	return id, nil
}

func (a *Authenticator) authenticate(ctx context.Context, c Credentials) (*Identity, error) {
	if c.Bearer != "" {
		if len(c.Bearer) > a.cfg.JWT.MaxTokenBytes {
			return nil, unauthenticated("", "bearer token larger than %d bytes", a.cfg.JWT.MaxTokenBytes)
		}
		switch {
		case LooksLikeAPIKey(c.Bearer):
			if a.keys == nil {
				return nil, unauthenticated(MethodAPIKey, "API keys are not accepted by this server")
			}
			return a.keys.verify(ctx, c.Bearer)
		case a.admin.match(c.Bearer):
			return &Identity{Subject: BootstrapSubject, Method: MethodBootstrap, Roles: []Role{RoleAdmin}}, nil
		case a.jwt != nil && looksLikeJWT(c.Bearer):
			return a.jwt.verify(ctx, c.Bearer)
		}
		return nil, unauthenticated("", "invalid bearer token")
	}
	if len(c.VerifiedChains) > 0 || len(c.PeerCertificates) > 0 {
		if a.mtls == nil {
			return nil, unauthenticated(MethodMTLS, "client certificates are not accepted by this server")
		}
		return a.mtls.verify(c)
	}
	return nil, unauthenticated("", "no credentials: send Authorization: Bearer <token>%s", a.certHint())
}

func (a *Authenticator) certHint() string {
	if a.mtls != nil {
		return " or a client certificate"
	}
	return ""
}

// ConfigureServerTLS sets the client CAs and client-auth mode of a server's
// TLS config when client certificates are on (else it leaves cfg alone).
// When bearer tokens are also accepted a certificate is optional
// (VerifyClientCertIfGiven); otherwise it is required. Either way a
// certificate from another CA fails the handshake.
func (a *Authenticator) ConfigureServerTLS(cfg *tls.Config) {
	if a.mtls == nil || cfg == nil {
		return
	}
	bearer := a.keys != nil || a.admin != nil || a.jwt != nil
	a.mtls.configure(cfg, bearer)
}

// Close stops the background work and waits for it. Authenticate fails
// with ErrUnavailable for API keys afterwards. It is idempotent.
func (a *Authenticator) Close() error {
	a.closeOnce.Do(func() {
		if a.keys != nil {
			a.keys.close()
		}
		if a.jwks != nil {
			a.jwks.close()
		}
	})
	return nil
}

var _ Verifier = (*Authenticator)(nil)
