package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/auth"
)

// Listen addresses when authentication is off: loopback only, so that a
// server nobody configured is not open to the network (the safe-by-default
// rule). With authentication on, DefaultHTTPAddr and DefaultGRPCAddr (every
// interface) apply.
const (
	LoopbackHTTPAddr = "127.0.0.1:8080"
	LoopbackGRPCAddr = "127.0.0.1:9090"
)

// ErrOpenWithoutAuth is returned (wrapped, naming the address) by Validate,
// New and Check when authentication is off and a listener would bind
// beyond loopback without Config.InsecureNoAuth.
var ErrOpenWithoutAuth = errors.New("authentication is off and the address is not loopback")

// insecureWarnEvery is how often a server running with InsecureNoAuth on a
// non-loopback address repeats its warning, so that it cannot scroll out of
// sight in the logs.
var insecureWarnEvery = time.Minute

// isLoopbackHost reports whether a listen address's host reaches this
// machine only: "localhost" or a loopback IP literal. An empty host or an
// unspecified address (every interface), and any other name, are not:
// a name is not resolved here, since what it resolves to can change.
func isLoopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// validateExposure applies the safe-by-default rule: without authentication
// every listener must be on loopback, unless the operator said
// --insecure-no-auth.
func (c Config) validateExposure() error {
	if c.Auth.Enabled() || c.InsecureNoAuth {
		return nil
	}
	var errs []error
	for _, a := range []struct{ flag, addr string }{{"--http-addr", c.HTTPAddr}, {"--grpc-addr", c.GRPCAddr}} {
		if a.addr != "" && !isLoopbackHost(a.addr) {
			errs = append(errs, fmt.Errorf("%s %q: %w: anyone who reaches it could publish, change triggers and read dead letters; "+
				"turn authentication on (%s, --admin-token-file, or the auth: section of --config), listen on 127.0.0.1, "+
				"or pass --insecure-no-auth to serve without authentication anyway", a.flag, a.addr, ErrOpenWithoutAuth, auth.EnvAdminToken))
		}
	}
	return errors.Join(errs...)
}

// validateAuth checks the auth section and names its fields as the
// configuration file does ("auth.jwt.issuer").
func (c Config) validateAuth() error {
	err := c.Auth.Validate()
	var fe auth.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	out := make(auth.FieldErrors, len(fe))
	for i, e := range fe {
		switch e.Path {
		case auth.EnvAdminToken: // set from the environment, not the file
		case "key_prefix":
			e.Path = "--key-prefix"
		case "admin_token_file":
			e.Path = "auth.admin_token_file (or --admin-token-file)"
		default:
			e.Path = "auth." + e.Path
		}
		out[i] = e
	}
	return out
}

// SecuritySetting is one line of the security report that
// `serve --check-config` prints.
type SecuritySetting struct {
	// Name of the setting ("authentication", "listeners").
	Name string
	// On reports whether the protection is in place.
	On bool
	// Detail says how it is set, or, when off, what that leaves open and
	// how to turn it on.
	Detail string
}

// securityChecks builds the report, one function per setting. A feature
// that adds a protection (listener TLS, the egress guard) adds its line
// here.
var securityChecks = []func(Config) SecuritySetting{
	checkAuthentication,
	checkExposure,
	checkAPIKeys,
	checkListenerTLS,
	checkClientCertificates,
	checkTransportLimits,
	checkEgress,
	checkTargetTLS,
}

// SecurityReport describes every security setting of cfg (defaults
// applied), the ones that are off included.
func SecurityReport(cfg Config) []SecuritySetting {
	cfg.setDefaults()
	cfg.Auth.SetDefaults() // the report shows effective values (revocation delay…)
	out := make([]SecuritySetting, 0, len(securityChecks))
	for _, check := range securityChecks {
		out = append(out, check(cfg))
	}
	return out
}

func checkAuthentication(c Config) SecuritySetting {
	s := SecuritySetting{Name: "authentication", On: c.Auth.Enabled()}
	if !s.On {
		s.Detail = "off: every caller gets every permission (set " + auth.EnvAdminToken + ", --admin-token-file, or auth: jwt/mtls in the config file)"
		return s
	}
	var m []string
	if c.Auth.AdminToken != "" || c.Auth.AdminTokenFile != "" {
		m = append(m, "bootstrap admin token")
	}
	if !c.Auth.APIKeys.Disabled {
		m = append(m, "API keys")
	}
	if c.Auth.JWT.JWKSURL != "" || c.Auth.JWT.JWKSFile != "" {
		m = append(m, "JWT")
	}
	if c.Auth.MTLS.ClientCAFile != "" {
		m = append(m, "client certificates")
	}
	s.Detail = "on: " + strings.Join(m, ", ") + "; every call but health checks and push sources needs an identity"
	return s
}

func checkExposure(c Config) SecuritySetting {
	addrs := fmt.Sprintf("http %s, grpc %s", c.HTTPAddr, c.GRPCAddr)
	loop := isLoopbackHost(c.HTTPAddr) && isLoopbackHost(c.GRPCAddr)
	switch {
	case c.Auth.Enabled():
		return SecuritySetting{Name: "listeners", On: true, Detail: addrs}
	case loop:
		return SecuritySetting{Name: "listeners", On: true, Detail: "loopback only, as authentication is off (" + addrs + ")"}
	}
	return SecuritySetting{Name: "listeners", On: false, Detail: "beyond loopback without authentication (--insecure-no-auth): " + addrs}
}

func checkAPIKeys(c Config) SecuritySetting {
	switch {
	case !c.Auth.Enabled():
		return SecuritySetting{Name: "api keys", On: false, Detail: "not checked while authentication is off"}
	case c.Auth.APIKeys.Disabled:
		return SecuritySetting{Name: "api keys", On: false, Detail: "disabled (auth.api_keys.disabled)"}
	}
	return SecuritySetting{Name: "api keys", On: true, Detail: fmt.Sprintf("on; a revoked key is refused within %s", c.Auth.APIKeys.RevocationDelay.Duration)}
}

// insecureWarner logs, at start and then every insecureWarnEvery until
// stopped, that the server is open to the network without authentication.
type insecureWarner struct {
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func startInsecureWarner(log *slog.Logger, addrs string) *insecureWarner {
	w := &insecureWarner{stop: make(chan struct{})}
	warn := func() {
		log.LogAttrs(context.Background(), slog.LevelWarn,
			"authentication is off and the server listens beyond loopback (--insecure-no-auth): anyone who reaches it may publish, change triggers and read, replay or purge dead letters",
			slog.String("listen", addrs))
	}
	warn()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(insecureWarnEvery)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				warn()
			}
		}
	}()
	return w
}

// Stop ends the warnings and waits for the goroutine. Safe on nil and
// idempotent.
func (w *insecureWarner) Stop() {
	if w == nil {
		return
	}
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}
