package auth

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"time"
)

// Permission is one right an identity may hold. Handlers ask for the
// permission of what they do (Identity.Allow), and for trigger-bound
// permissions also name the trigger (Identity.AllowTrigger), so the
// identity's scope is checked too.
type Permission string

// The permissions. The value is what errors and audit records show.
const (
	// PermPublish publishes events (HTTP POST /events, EventService), within
	// the identity's source and type scope (Identity.AllowPublish).
	PermPublish Permission = "events.publish"
	// PermSetHops sets the hop-count extension (HopsAttribute) on a
	// published event. Only relays (and admins) may: a publisher that could
	// set it could reset the loop guard.
	PermSetHops Permission = "events.set_hops"
	// PermConsume pulls events of the triggers the identity may see.
	PermConsume Permission = "events.consume"
	// PermTriggersRead lists and gets triggers and their stats, and tests
	// their filters against events.
	PermTriggersRead Permission = "triggers.read"
	// PermTriggersWrite creates, applies, updates and deletes triggers.
	PermTriggersWrite Permission = "triggers.write"
	// PermDeadLettersRead lists and shows dead letters (with their payloads)
	// and their stats.
	PermDeadLettersRead Permission = "deadletters.read"
	// PermDeadLettersWrite replays and purges dead letters.
	PermDeadLettersWrite Permission = "deadletters.write"
	// PermArchiveRead reads the event archive's figures and recent events
	// (within the identity's event scope) and the replay jobs it may see.
	PermArchiveRead Permission = "archive.read"
	// PermArchiveReplay starts and cancels replays of archived events into
	// the triggers the identity may see.
	PermArchiveReplay Permission = "archive.replay"
	// PermSourcesRead lists the configured sources.
	PermSourcesRead Permission = "sources.read"
	// PermMetricsRead reads GET /metrics.
	PermMetricsRead Permission = "metrics.read"
	// PermTokensManage creates, lists and revokes API keys.
	PermTokensManage Permission = "tokens.manage"
	// PermAuditRead lists audit records.
	PermAuditRead Permission = "audit.read"
)

// HopsAttribute is the CloudEvents extension that counts how many times an
// event passed through Switchyard. Setting it on a publish needs PermSetHops.
const HopsAttribute = "switchyardhops"

// Role is a named set of permissions. An identity may hold several roles;
// it holds the union of their permissions.
type Role string

// The roles. RolePermissions lists what each grants.
const (
	// RolePublisher publishes events.
	RolePublisher Role = "publisher"
	// RoleRelay publishes events and may set their hop count: for bridges
	// that forward events which already passed through Switchyard.
	RoleRelay Role = "relay"
	// RoleConsumer pulls events of the triggers it may see.
	RoleConsumer Role = "consumer"
	// RoleViewer reads: triggers, stats, dead letters, the archive,
	// sources, metrics.
	RoleViewer Role = "viewer"
	// RoleOperator is a viewer that also changes triggers, replays and
	// purges dead letters and replays archived events.
	RoleOperator Role = "operator"
	// RoleAdmin holds every permission: an operator that also manages API
	// keys, reads the audit log, publishes, relays and consumes. Scoped to
	// a trigger prefix it is a tenant's administrator.
	RoleAdmin Role = "admin"
)

// Roles lists every role, in increasing order of power.
func Roles() []Role {
	return []Role{RolePublisher, RoleRelay, RoleConsumer, RoleViewer, RoleOperator, RoleAdmin}
}

// Method is how an identity proved itself.
type Method string

// The authentication methods.
const (
	// MethodAPIKey: an API key (Authorization: Bearer syk_…) stored in Redis.
	MethodAPIKey Method = "apikey"
	// MethodJWT: a JWT bearer token verified against the configured JWKS.
	MethodJWT Method = "jwt"
	// MethodMTLS: a client certificate verified by the TLS handshake.
	MethodMTLS Method = "mtls"
	// MethodBootstrap: the bootstrap admin token (SWITCHYARD_ADMIN_TOKEN).
	MethodBootstrap Method = "bootstrap"
	// MethodNone: authentication is off; see Anonymous.
	MethodNone Method = "none"
)

// Scope restricts what an identity's permissions reach. Each list holds
// prefixes; a value is in scope when it starts with one of them. An empty
// list leaves that dimension unrestricted. Prefixes match bytes exactly, so
// end them with a separator ("/shop/", "com.shop.", "shop-") unless you
// mean "/shop" to cover "/shopping" as well.
type Scope struct {
	// Sources are the event sources the identity may publish.
	Sources []string `json:"sources,omitempty"`
	// Types are the event types the identity may publish.
	Types []string `json:"types,omitempty"`
	// Triggers are the trigger names the identity may see and change,
	// together with their dead letters and events.
	Triggers []string `json:"triggers,omitempty"`
}

// Unrestricted reports whether the scope restricts nothing.
func (s Scope) Unrestricted() bool {
	return len(s.Sources) == 0 && len(s.Types) == 0 && len(s.Triggers) == 0
}

// AllowsSource reports whether an event with this source is in scope.
func (s Scope) AllowsSource(source string) bool { return matchPrefix(s.Sources, source) }

// AllowsType reports whether an event with this type is in scope.
func (s Scope) AllowsType(typ string) bool { return matchPrefix(s.Types, typ) }

// AllowsTrigger reports whether the trigger of this name is in scope.
func (s Scope) AllowsTrigger(name string) bool { return matchPrefix(s.Triggers, name) }

// matchPrefix reports whether v starts with one of prefixes, or prefixes is
// empty. An empty prefix inside a non-empty list matches nothing: validation
// refuses it, and should one slip through it must not widen the scope to
// everything.
func matchPrefix(prefixes []string, v string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// Identity is a caller proven by an Authenticator. Its methods are safe on a
// nil *Identity and then deny everything, so a handler that found no
// identity in its context fails closed.
type Identity struct {
	// Subject names the caller: the API key's name, the token's subject
	// claim, the certificate's URI SAN or common name, "bootstrap-admin", or
	// "anonymous".
	Subject string
	// Method is how the caller proved it.
	Method Method
	// Roles are the caller's roles; unknown names grant nothing.
	Roles []Role
	// Scope restricts what the roles reach.
	Scope Scope
	// Expires is when the credential stops being valid (the key's or token's
	// expiry, the certificate's NotAfter); zero when it does not expire.
	// Long-lived streams should end when it passes.
	Expires time.Time
	// Remote is the address the request came from (Credentials.Remote). It
	// is not part of the proof; audit records carry it.
	Remote string
}

// Anonymous returns the identity the server gives every caller when
// authentication is off (Config.Enabled is false): subject "anonymous",
// method none, role admin with no scope, so it holds every permission. The
// server must then listen on loopback only, or on other addresses only with
// --insecure-no-auth; that rule, not this identity, is the protection.
func Anonymous() *Identity {
	return &Identity{Subject: "anonymous", Method: MethodNone, Roles: []Role{RoleAdmin}}
}

// Has reports whether the identity holds perm through one of its roles.
func (id *Identity) Has(perm Permission) bool {
	if id == nil {
		return false
	}
	for _, r := range id.Roles {
		if roleGrants(r, perm) {
			return true
		}
	}
	return false
}

// Permissions lists the permissions the identity holds, in a fixed order.
func (id *Identity) Permissions() []Permission {
	var out []Permission
	for _, p := range allPermissions {
		if id.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// Expired reports whether the credential had expired at now.
func (id *Identity) Expired(now time.Time) bool {
	return id != nil && !id.Expires.IsZero() && !now.Before(id.Expires)
}

// Allow returns nil when the identity holds perm, else a *DeniedError. For a
// trigger-scoped permission it checks the permission only; use AllowTrigger
// when the trigger is known, and CanSeeTrigger to filter listings.
func (id *Identity) Allow(perm Permission) error {
	if !id.Has(perm) {
		return id.denied(perm, "", "")
	}
	return nil
}

// AllowTrigger returns nil when the identity holds perm and the trigger of
// this name is in its scope, else a *DeniedError with Field "trigger". For a
// new trigger (create, apply), the name it will have is what is checked: a
// tenant can only make triggers inside its prefix.
func (id *Identity) AllowTrigger(perm Permission, name string) error {
	if err := id.Allow(perm); err != nil {
		return err
	}
	if !id.Scope.AllowsTrigger(name) {
		return id.denied(perm, "trigger", name)
	}
	return nil
}

// CanSeeTrigger is the visibility predicate for listings: it reports whether
// the trigger of this name is in the identity's scope. A listing shows a
// trigger (or its dead letters) only when this holds; the caller checks the
// listing's permission (PermTriggersRead, PermDeadLettersRead) first.
func (id *Identity) CanSeeTrigger(name string) bool {
	return id != nil && id.Scope.AllowsTrigger(name)
}

// AllowPublish returns nil when the identity may publish an event with this
// source and type, else a *DeniedError whose Field is "source" or "type".
// A call publishing several events must check each and refuse the whole call
// on the first denial: nothing is partly accepted.
func (id *Identity) AllowPublish(source, typ string) error {
	if err := id.Allow(PermPublish); err != nil {
		return err
	}
	if !id.Scope.AllowsSource(source) {
		return id.denied(PermPublish, "source", source)
	}
	if !id.Scope.AllowsType(typ) {
		return id.denied(PermPublish, "type", typ)
	}
	return nil
}

// AllowHops returns nil when the identity may set the hop-count extension on
// a publish, else a *DeniedError with Field HopsAttribute.
func (id *Identity) AllowHops() error {
	if !id.Has(PermSetHops) {
		return id.denied(PermSetHops, HopsAttribute, "")
	}
	return nil
}

// AllowGrant returns nil when the identity may create a credential (an API
// key) with these roles and this scope: it holds PermTokensManage, every
// permission the roles grant, and the scope lies inside its own (Covers). A
// tenant's admin can thus only hand out what it has, within its prefixes.
func (id *Identity) AllowGrant(roles []Role, scope Scope) error {
	if err := id.Allow(PermTokensManage); err != nil {
		return err
	}
	for _, r := range roles {
		for _, p := range rolePerms[r] {
			if !id.Has(p) {
				return id.denied(p, "roles", string(r))
			}
		}
	}
	if !id.Covers(scope) {
		return id.denied(PermTokensManage, "scope", "")
	}
	return nil
}

// Covers reports whether scope lies inside the identity's scope: in every
// dimension the identity restricts, scope is restricted too and each of its
// prefixes extends one of the identity's. Key listings and revocations by a
// scoped admin reach only the keys it covers.
func (id *Identity) Covers(scope Scope) bool {
	return id != nil &&
		coversPrefixes(id.Scope.Sources, scope.Sources) &&
		coversPrefixes(id.Scope.Types, scope.Types) &&
		coversPrefixes(id.Scope.Triggers, scope.Triggers)
}

func coversPrefixes(outer, inner []string) bool {
	if len(outer) == 0 {
		return true
	}
	if len(inner) == 0 {
		return false
	}
	for _, p := range inner {
		if p == "" || !matchPrefix(outer, p) {
			return false
		}
	}
	return true
}

func (id *Identity) denied(perm Permission, field, value string) *DeniedError {
	e := &DeniedError{Permission: perm, Field: field, Value: value}
	if id != nil {
		e.Subject = id.Subject
	}
	return e
}

// Credentials is what a caller presented, as the transport saw it. The
// transport adapters (authgrpc, authhttp) fill it; nothing in it has been
// checked yet except VerifiedChains, which the TLS handshake verified.
type Credentials struct {
	// Bearer is the token from "Authorization: Bearer …" (HTTP header or
	// gRPC metadata), empty when none was sent.
	Bearer string
	// PeerCertificates is the chain the client sent, leaf first (from
	// tls.ConnectionState). It is used only when VerifiedChains is empty, and
	// then verified against the client CA here.
	PeerCertificates []*x509.Certificate
	// VerifiedChains are the chains the TLS handshake verified against the
	// server's client CAs (tls.ConnectionState.VerifiedChains).
	VerifiedChains [][]*x509.Certificate
	// Remote is the caller's address, for audit records and logs.
	Remote string
}

// Verifier proves who a caller is. *Authenticator implements it; the
// transport adapters take this interface.
type Verifier interface {
	// Authenticate returns the caller's identity, or an error that
	// errors.Is ErrUnauthenticated (the credentials prove nothing; the
	// reason is safe to show the caller and never contains the credential)
	// or ErrUnavailable (they could not be checked: the key store is
	// unreachable). ctx bounds the Redis read an API key may need.
	Authenticate(ctx context.Context, c Credentials) (*Identity, error)
}

type ctxKey struct{}

// NewContext returns a context carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity the transport adapters put in ctx. The
// identity is nil when there is none; its methods then deny everything.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok && id != nil
}

// clone returns a copy that shares nothing mutable with id, for identities
// handed out from a cache.
func (id *Identity) clone() *Identity {
	c := *id
	c.Roles = slices.Clone(id.Roles)
	c.Scope = Scope{
		Sources:  slices.Clone(id.Scope.Sources),
		Types:    slices.Clone(id.Scope.Types),
		Triggers: slices.Clone(id.Scope.Triggers),
	}
	return &c
}
