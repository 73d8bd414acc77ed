package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchyard-io/switchyard/internal/secrets"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
)

// Loopback target modes (EgressConfig.LoopbackTargets).
const (
	// LoopbackAuto allows loopback targets while both listeners are on
	// loopback (the quickstart: a server reachable from this machine only,
	// its functions beside it) and denies them otherwise.
	LoopbackAuto = "auto"
	// LoopbackAllow always allows loopback targets.
	LoopbackAllow = "allow"
	// LoopbackDeny never allows them (unless AllowTargets names them).
	LoopbackDeny = "deny"
)

// EgressConfig says where the server's triggers may send events and how.
// The egress guard is always on: a server reachable from other machines
// must not let a caller who may apply triggers aim one at the cloud
// metadata address, the Redis port or anything else on the server's own
// network that the caller could not reach itself.
type EgressConfig struct {
	// AllowTargets opens denied addresses (CIDR prefixes, addresses,
	// address:port, host:port) for the functions a platform runs on its
	// own network (see egress.Config.AllowTargets).
	AllowTargets []string
	// LoopbackTargets is LoopbackAuto (default), LoopbackAllow or
	// LoopbackDeny.
	LoopbackTargets string
	// RequireTLS refuses plaintext targets (grpc host:port, http://) at
	// apply time, and dead-letters attempts of stored ones.
	RequireTLS bool
	// CAFile is trusted for targets' certificates instead of the system
	// roots, unless a trigger names its own; CertFile and KeyFile are the
	// client certificate presented to targets that ask for one.
	CAFile, CertFile, KeyFile string
	// SecretsDir holds one file per secret triggers may name in
	// target.auth; SWITCHYARD_SECRET_<NAME> environment variables are read
	// first.
	SecretsDir string

	// resolver replaces DNS for the guard (tests).
	resolver egress.Resolver
}

// Validate reports every invalid field.
func (e EgressConfig) Validate() error {
	var errs []error
	switch e.LoopbackTargets {
	case "", LoopbackAuto, LoopbackAllow, LoopbackDeny:
	default:
		errs = append(errs, fmt.Errorf("loopback targets %q: want auto, allow or deny", e.LoopbackTargets))
	}
	if err := (egress.Config{AllowTargets: e.AllowTargets}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("allow targets: %w", err))
	}
	if err := (delivery.Outbound{CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile}).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// allowLoopback applies LoopbackTargets to the listeners' addresses.
func (c Config) allowLoopbackTargets() bool {
	switch c.Egress.LoopbackTargets {
	case LoopbackAllow:
		return true
	case LoopbackDeny:
		return false
	}
	return isLoopbackHost(c.HTTPAddr) && isLoopbackHost(c.GRPCAddr)
}

// outbound completes Router.Outbound from Egress: what a caller (a test,
// an embedding program) set there itself is kept, the rest comes from
// Egress, and the guard is built unless one was given.
func (c Config) outbound() (delivery.Outbound, error) {
	o := c.Router.Outbound
	if o.Guard == nil {
		g, err := egress.New(egress.Config{AllowTargets: c.Egress.AllowTargets, AllowLoopback: c.allowLoopbackTargets(), Resolver: c.Egress.resolver})
		if err != nil {
			return o, fmt.Errorf("allow targets: %w", err)
		}
		o.Guard = g
	}
	o.RequireTLS = o.RequireTLS || c.Egress.RequireTLS
	if o.CAFile == "" {
		o.CAFile = c.Egress.CAFile
	}
	if o.CertFile == "" && o.KeyFile == "" {
		o.CertFile, o.KeyFile = c.Egress.CertFile, c.Egress.KeyFile
	}
	if o.Secrets == nil {
		chain := secrets.Chain{secrets.Env{}}
		if c.Egress.SecretsDir != "" {
			chain = append(chain, secrets.Dir{Path: c.Egress.SecretsDir})
		}
		o.Secrets = chain
	}
	return o, nil
}

func checkEgress(c Config) SecuritySetting {
	s := SecuritySetting{Name: "egress guard", On: true}
	var d []string
	if c.allowLoopbackTargets() {
		why := "--loopback-targets allow"
		if c.Egress.LoopbackTargets != LoopbackAllow {
			why = "both listeners are on loopback"
		}
		d = append(d, "loopback targets allowed ("+why+")")
	} else {
		d = append(d, "loopback, link-local (metadata), private, CGNAT and multicast targets denied")
	}
	if n := len(c.Egress.AllowTargets); n > 0 {
		d = append(d, fmt.Sprintf("opened by --allow-targets: %s", strings.Join(c.Egress.AllowTargets, ",")))
	}
	s.Detail = strings.Join(d, "; ")
	return s
}

func checkTargetTLS(c Config) SecuritySetting {
	s := SecuritySetting{Name: "target TLS", On: c.Egress.RequireTLS || c.Router.Outbound.RequireTLS}
	if s.On {
		s.Detail = "plaintext targets (grpc host:port, http://) refused"
	} else {
		s.Detail = "off: triggers may deliver in plaintext (--require-target-tls refuses grpc host:port and http:// targets)"
	}
	return s
}
