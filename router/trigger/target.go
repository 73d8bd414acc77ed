package trigger

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/internal/secrets"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
)

// GRPCSPrefix starts a gRPC target reached over TLS.
const GRPCSPrefix = "grpcs://"

// Redaction replaces credentials in a rendered target (see Redacted).
const Redaction = "REDACTED"

// TargetTLS configures TLS to a grpcs:// or https:// target. Paths are on
// the server's file system; the files are read again when they change.
type TargetTLS struct {
	// CAFile is a PEM bundle of the CAs that may sign the target's
	// certificate. Default: the server's target CA, else the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// CertFile and KeyFile are the certificate chain and key presented to
	// the target (mTLS). Default: the server's target client certificate.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ServerName is checked in the target's certificate and sent as SNI.
	// Default: the target's host.
	ServerName string `json:"server_name,omitempty"`
}

// TargetAuth names secrets held by the server (see internal/secrets) that
// authenticate every attempt. The values never appear in the trigger.
type TargetAuth struct {
	// BearerSecret is sent as "authorization: Bearer <value>": gRPC
	// metadata, or an HTTP header. Only over TLS or to a loopback target.
	BearerSecret string `json:"bearer_secret,omitempty"`
	// SigningSecret signs HTTP deliveries in the Standard Webhooks format
	// (webhook-id, webhook-timestamp, webhook-signature); its value is a
	// "whsec_" secret as Standard Webhooks libraries take it.
	SigningSecret string `json:"signing_secret,omitempty"`
}

// PullTarget is the target of a pull trigger: nothing is pushed, the
// events wait in the trigger's queue until consumers pull them
// (switchyard.v1.PullService). Several consumers compete for the events; the
// delivery policy applies as to a pushed trigger, timeout being the lease a
// consumer holds an event for before it is handed to another. It has no
// settings yet: a struct, so that options can come without changing the
// file format.
type PullTarget struct{}

// PullRedacted is how a pull target renders (Redacted, dead letters, logs).
const PullRedacted = "pull"

// IsPull reports whether the target is a pull target.
func (t Target) IsPull() bool { return t.Pull != nil }

// Secure reports whether the target is reached over TLS (grpcs://, https://).
func (t Target) Secure() bool {
	if t.GRPC != "" {
		return strings.HasPrefix(t.GRPC, GRPCSPrefix)
	}
	return strings.HasPrefix(strings.ToLower(t.URL), "https://")
}

// Address returns the host:port the target connects to (an URL's default
// port filled in), or "" for an invalid target and a publish target (whose
// kind may name several: see PublishTarget).
func (t Target) Address() string {
	if t.IsPull() || t.Publish != nil {
		return ""
	}
	if t.GRPC != "" {
		return strings.TrimPrefix(t.GRPC, GRPCSPrefix)
	}
	u, err := url.Parse(t.URL)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if strings.EqualFold(u.Scheme, "https") {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Redacted renders the target for listings, logs and dead letters:
// "grpc://host:port", "grpcs://host:port", or the URL with its userinfo,
// every query value (a parameter without a value too) and its fragment
// replaced by Redaction. A URL that does not parse renders as
// "(invalid URL)".
func (t Target) Redacted() string {
	if t.IsPull() && t.GRPC == "" && t.URL == "" {
		return PullRedacted
	}
	if t.Publish != nil && t.GRPC == "" && t.URL == "" {
		return t.Publish.redacted()
	}
	if t.GRPC != "" {
		if strings.HasPrefix(t.GRPC, GRPCSPrefix) {
			return t.GRPC
		}
		return "grpc://" + t.GRPC
	}
	if t.URL == "" {
		return ""
	}
	return RedactURL(t.URL)
}

// RedactURL returns raw with its credentials replaced (see
// Target.Redacted).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	if u.User != nil {
		u.User = url.User(Redaction)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, _, ok := strings.Cut(p, "="); ok {
				parts[i] = k + "=" + Redaction
			} else if p != "" {
				parts[i] = Redaction
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = Redaction, ""
	}
	return u.String()
}

// holdsRedaction reports whether a URL carries Redaction where RedactURL
// puts it: a redacted listing applied back would store it.
func holdsRedaction(u *url.URL) bool {
	if u.User != nil {
		p, _ := u.User.Password()
		if u.User.Username() == Redaction || p == Redaction {
			return true
		}
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		if k, v, ok := strings.Cut(p, "="); ok && v == Redaction || !ok && k == Redaction {
			return true
		}
	}
	return false
}

// validate checks the target as written, every problem with its path.
func (t Target) validate() FieldErrors {
	var errs FieldErrors
	add := func(path, format string, a ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	kinds := 0
	for _, set := range []bool{t.GRPC != "", t.URL != "", t.IsPull(), t.Publish != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		add("target", "one of target.grpc, target.url, target.pull or target.publish is required")
		return errs
	case kinds > 1:
		add("target", "set only one of target.grpc, target.url, target.pull and target.publish")
		return errs
	case t.IsPull():
		// Consumers connect to Switchyard: there is nothing to reach, so
		// nothing to secure or authenticate on the way out.
		if t.TLS != nil {
			add("target.tls", "does not apply to a pull target: consumers connect to Switchyard")
		}
		if t.Auth != nil {
			add("target.auth", "does not apply to a pull target: consumers authenticate to Switchyard (role consumer)")
		}
		return errs
	case t.Publish != nil:
		// A broker target takes its TLS from its kind's fields (amqps://,
		// tls: true) and its credentials from its secret-name fields.
		if t.TLS != nil {
			add("target.tls", "does not apply to a publish target: its kind's fields choose TLS (see docs/targets)")
		}
		if t.Auth != nil {
			add("target.auth", "does not apply to a publish target: its kind's fields name the secrets it authenticates with")
		}
		return append(errs, t.Publish.validate()...)
	case t.GRPC != "":
		hp := strings.TrimPrefix(t.GRPC, GRPCSPrefix)
		if scheme, _, ok := strings.Cut(hp, "://"); ok {
			add("target.grpc", "scheme %q: write host:port for plaintext gRPC or grpcs://host:port for TLS", scheme)
		} else if err := validHostPort(hp); err != nil {
			add("target.grpc", "%v", err)
		}
	default:
		u, err := url.Parse(t.URL)
		switch {
		case err != nil:
			add("target.url", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			add("target.url", "scheme must be http or https, not %q", u.Scheme)
		case u.Host == "":
			add("target.url", "missing host")
		case u.Port() != "" && validHostPort(u.Host) != nil:
			add("target.url", "invalid port %q", u.Port())
		case holdsRedaction(u):
			add("target.url", "holds %s where a credential was (answers of the API redact URLs): give the full URL", Redaction)
		}
	}
	if c := t.TLS; c != nil {
		if !t.Secure() {
			add("target.tls", "applies only to grpcs:// and https:// targets")
		}
		for _, f := range []struct{ path, v string }{{"target.tls.ca_file", c.CAFile}, {"target.tls.cert_file", c.CertFile}, {"target.tls.key_file", c.KeyFile}} {
			if f.v != "" && (!filepath.IsAbs(f.v) || filepath.Clean(f.v) != f.v) {
				add(f.path, "%q: give an absolute, clean path on the server", f.v)
			}
		}
		if (c.CertFile == "") != (c.KeyFile == "") {
			add("target.tls", "cert_file and key_file go together")
		}
		if sn := c.ServerName; sn != "" {
			if _, err := netip.ParseAddr(sn); err != nil {
				if err := egress.ValidHostname(sn); err != nil {
					add("target.tls.server_name", "%v", err)
				}
			}
		}
	}
	if a := t.Auth; a != nil {
		if a.BearerSecret == "" && a.SigningSecret == "" {
			add("target.auth", "name bearer_secret, signing_secret or both")
		}
		for _, f := range []struct{ path, v string }{{"target.auth.bearer_secret", a.BearerSecret}, {"target.auth.signing_secret", a.SigningSecret}} {
			if f.v != "" && !secrets.ValidName(f.v) {
				add(f.path, "%q is not a secret name: use 1 to 128 letters, digits, '_' and '-', starting with a letter or digit", f.v)
			}
		}
		if a.SigningSecret != "" && t.URL == "" {
			add("target.auth.signing_secret", "signatures are for HTTP targets (Standard Webhooks); a gRPC target takes bearer_secret")
		}
		if a.BearerSecret != "" && !t.Secure() && !loopbackHost(t.Address()) {
			add("target.auth.bearer_secret", "a bearer token goes only over TLS (grpcs:// or https://) or to a loopback address")
		}
	}
	return errs
}

// loopbackHost reports whether hostport names this machine: a loopback
// address or localhost.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// Policy is what a server allows beyond a valid spec. It is checked when a
// trigger is applied through the API (CompileWith, ValidateWith), so that a
// forbidden target is refused with its field path; triggers already stored
// compile without it (a server's policy may tighten after they were
// applied), and the delivery layer enforces the same rules on every
// connection. The zero Policy allows every valid spec.
type Policy struct {
	// CheckAddress refuses a target's host:port (egress.Guard.CheckLiteral
	// fits). Nil: every address.
	CheckAddress func(hostport string) error
	// RequireTLS refuses plaintext targets (grpc host:port, http://).
	RequireTLS bool
	// CheckSecret refuses a secret name, typically one the server does not
	// hold. Nil: every valid name.
	CheckSecret func(name string) error
	// CheckTLS refuses TLS settings, typically files that do not load. Nil:
	// every valid setting.
	CheckTLS func(TargetTLS) error
	// MaxDedupWindow refuses a longer delivery.dedup_window (0: only
	// MaxDedupWindow applies).
	MaxDedupWindow time.Duration
}

// check applies p to a target that passed validate.
func (p Policy) check(t Target) FieldErrors {
	if t.IsPull() {
		return nil // nothing leaves the server
	}
	if t.Publish != nil {
		return p.checkPublish(*t.Publish)
	}
	var errs FieldErrors
	path := "target.url"
	if t.GRPC != "" {
		path = "target.grpc"
	}
	if p.RequireTLS && !t.Secure() {
		hint := "use https://"
		if t.GRPC != "" {
			hint = "use grpcs://" + t.GRPC
		}
		errs = append(errs, FieldError{Path: path, Msg: "this server requires TLS to targets: " + hint})
	}
	if p.CheckAddress != nil {
		if err := p.CheckAddress(t.Address()); err != nil {
			errs = append(errs, FieldError{Path: path, Msg: err.Error()})
		}
	}
	if p.CheckTLS != nil && t.Secure() {
		c := TargetTLS{}
		if t.TLS != nil {
			c = *t.TLS
		}
		if err := p.CheckTLS(c); err != nil {
			errs = append(errs, FieldError{Path: "target.tls", Msg: err.Error()})
		}
	}
	if a := t.Auth; a != nil && p.CheckSecret != nil {
		for _, f := range []struct{ path, v string }{{"target.auth.bearer_secret", a.BearerSecret}, {"target.auth.signing_secret", a.SigningSecret}} {
			if f.v == "" {
				continue
			}
			if err := p.CheckSecret(f.v); err != nil {
				errs = append(errs, FieldError{Path: f.path, Msg: err.Error()})
			}
		}
	}
	return errs
}

// ValidateWith checks the spec as Validate does and, when its target is
// valid, against p.
func (s Spec) ValidateWith(p Policy) error {
	_, errs := s.validate()
	if len(errs) == 0 {
		errs = append(p.check(s.Target), p.checkDelivery(s.Delivery)...)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// CompileWith compiles s as Compile does, and refuses what p does not
// allow: the API's path for triggers being applied.
func CompileWith(s Spec, p Policy) (*Trigger, error) {
	t, err := Compile(s)
	if err != nil {
		return nil, err
	}
	if errs := append(p.check(t.Spec.Target), p.checkDelivery(t.Spec.Delivery)...); len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}
