// Package auth decides who calls Switchyard and what they may do: identities
// (authentication), roles and scopes (authorization), API keys in Redis, and
// the audit log of admin actions. It knows nothing of the server's services;
// the transport adapters live in auth/authgrpc and auth/authhttp.
//
// # Model
//
// An Identity has a subject, the method that proved it, roles and a scope.
// Roles grant permissions (RolePermissions): publisher publishes; relay
// publishes and may set the hop-count extension (switchyardhops), which no
// one else may, so a publisher cannot reset the loop guard; consumer pulls
// events; viewer reads triggers, stats, dead letters, sources and metrics;
// operator is a viewer that also changes triggers and replays and purges
// dead letters; admin holds every permission, API keys and the audit log
// included. A scope holds prefixes of the event sources and types the
// identity may publish and of the trigger names it may see and change
// (with their dead letters); an empty list does not restrict. Handlers ask
// Allow, AllowTrigger, AllowPublish or AllowHops and get a *DeniedError
// naming the permission or the out-of-scope attribute; listings filter with
// CanSeeTrigger, so a tenant sees only its triggers.
//
// Authentication off: when Config.Enabled is false, the Authenticator gives
// every caller the Anonymous identity, which holds every permission. The
// server must then bind to loopback (or say --insecure-no-auth); this
// package only makes "off" explicit and uniform.
//
// # Methods
//
// Any combination may be on (Config):
//
//   - API keys, "syk_<id>_<secret>" (see apikey.go): the id finds the record
//     in O(1); the secret is 256 bits from crypto/rand; Redis keeps only the
//     SHA-256 of the key (a slow password hash protects guessable secrets,
//     which these are not, and would make every cache miss an expensive,
//     attacker-triggerable computation). Lookups are cached per replica;
//     a revocation reaches every replica within api_keys.revocation_delay
//     (1 s) through a revision counter, not pub/sub (see keyverify.go).
//     API keys are on whenever authentication is, unless disabled.
//   - JWT bearer tokens, verified against a JWKS from a URL (fetched in the
//     background, again every refresh_interval and when a token names an
//     unknown key, at most once per min_refresh_interval, bounded in size
//     and time, redirects refused) or a file (read again when it changes).
//     Issuer and audience are required; exp is required; nbf and iat are
//     checked; the clock skew is configurable. Asymmetric algorithms only:
//     HS* and none are refused before any key is looked at, and a key is
//     used only for the algorithm family (and curve) it belongs to.
//     Subject, roles and scope prefixes come from configurable claim paths.
//   - mTLS client certificates: the TLS handshake verifies the chain against
//     the client CA (ConfigureServerTLS); the subject is the leaf's first
//     URI SAN, else its common name, mapped to roles and scope by
//     Config.Identities. The CA file is read again when it changes
//     (internal/tlsfiles), so a new client CA needs no restart.
//   - The bootstrap admin token (SWITCHYARD_ADMIN_TOKEN or
//     admin_token_file), compared in constant time, so a fresh install can
//     create the first API keys.
//
// Static identities also map JWT subjects, but only those declared with
// method "jwt" and only for tokens without a roles claim: an identity
// provider that issues roles stays the authority over them, one that issues
// none (plain OIDC) can still be used, and a certificate's name never meets
// a token's subject.
//
// # Library choice: go-jose v4
//
// go-jose parses JWKs (RSA, EC, OKP, with x5c checks) itself, while
// golang-jwt v5 has no JWK support and would need a second library or our
// own JWK code; and go-jose's ParseSigned requires the list of accepted
// algorithms, so algorithm confusion is refused by the parser, not by a
// callback we might get wrong.
//
// # Audit
//
// Auditor writes one record per admin action, refusals included: a JSON log
// line and an entry in the capped stream "<prefix>:{auth}:audit"
// (XADD MAXLEN ~). Records never hold credentials: every field passes
// through Redact and is bounded.
//
// # Redis keys
//
//	<prefix>:{auth}:keys    HASH    API key id → record (JSON: name, SHA-256 of the key, roles, scope, created, expires, created_by)
//	<prefix>:{auth}:names   HASH    API key name → id
//	<prefix>:{auth}:rev     STRING  revision of the keys (every create and revoke increments it)
//	<prefix>:{auth}:audit   STREAM  audit records
package auth
