package sdk

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Defaults applied by [Config.WithDefaults].
const (
	// DefaultAddress is the address used when Config.Address is empty.
	DefaultAddress = "localhost:9090"
	// DefaultTimeout is the per-call timeout used when Config.Timeout is 0.
	DefaultTimeout = 10 * time.Second
)

// Config configures a [Client]. The zero Config is usable: it talks to
// localhost:9090 in plaintext with a 10s timeout per call, without
// credentials (a server with authentication off).
type Config struct {
	// Address of a Switchyard instance as "host:port", default
	// "localhost:9090". A gRPC target with a scheme ("dns:///host:port",
	// "unix:///path") is accepted as well.
	Address string
	// Token is sent with every call as "authorization: Bearer <Token>": an
	// API key ("syk_…", made by `switchyard token create`), a JWT, or the
	// bootstrap admin token. It is sent only over TLS, or without TLS to a
	// loopback address (localhost, 127.0.0.0/8, ::1, a unix socket): a
	// bearer token read on the way is as good as the key itself. New fails
	// with ErrPlaintextToken when it would go unencrypted elsewhere, unless
	// AllowPlaintextToken.
	Token string
	// AllowPlaintextToken sends Token over a plaintext connection to a
	// non-loopback address, e.g. to a TLS-terminating sidecar on a trusted
	// network. Anyone on the path can read the token.
	AllowPlaintextToken bool
	// TLS, when set, connects with TLS (credentials.NewTLS): the server's
	// certificate is verified, and a client certificate sent if given.
	TLS *TLSConfig
	// DialOptions are passed to grpc.NewClient, after the options Token and
	// TLS make (so they win). Unless TLS or these options set transport
	// credentials (grpc.WithTransportCredentials or
	// grpc.WithCredentialsBundle), the connection is plaintext
	// (insecure.NewCredentials): use TLS for anything but a trusted network.
	DialOptions []grpc.DialOption
	// Timeout bounds each call made by the Client's methods, default 10s; a
	// shorter deadline on the call's context wins. It does not apply to the
	// generated clients returned by Events, Triggers and DeadLetters.
	Timeout time.Duration
	// TracerProvider makes a client span for each call (OpenTelemetry);
	// nil uses the global one (otel.SetTracerProvider), which records
	// nothing until the application sets it.
	TracerProvider trace.TracerProvider
	// Propagator writes the call's trace context into its gRPC metadata,
	// so that Switchyard continues the caller's trace: W3C Trace Context
	// always, plus what this propagator (nil: the global one,
	// otel.SetTextMapPropagator) adds.
	Propagator propagation.TextMapPropagator
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports whether c, after defaults, is usable: the address is
// "host:port" (or a gRPC target with a scheme) and the timeout is not
// negative.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	// A gRPC target with a scheme is left to grpc.NewClient to check.
	if !hasScheme(c.Address) {
		if _, port, err := net.SplitHostPort(c.Address); err != nil {
			errs = append(errs, fmt.Errorf("switchyard: config: address %q: want host:port: %w", c.Address, err))
		} else if port == "" {
			errs = append(errs, fmt.Errorf("switchyard: config: address %q has no port", c.Address))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("switchyard: config: negative timeout %v", c.Timeout))
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		errs = append(errs, errors.New("switchyard: config: the token contains white space"))
	}
	// Plaintext for certain: fail now rather than at the first call.
	if c.Token != "" && c.TLS == nil && len(c.DialOptions) == 0 && !c.AllowPlaintextToken && !isLoopbackTarget(c.Address) {
		errs = append(errs, fmt.Errorf("%w (%s): set TLS (--tls-ca …) or AllowPlaintextToken", ErrPlaintextToken, c.Address))
	}
	if c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("switchyard: config: a TLS client certificate needs both CertFile and KeyFile"))
	}
	return errors.Join(errs...)
}

// hasScheme reports whether addr is a gRPC target with a scheme
// ("dns:///host:port", "unix:///path", "unix:path").
func hasScheme(addr string) bool {
	return strings.Contains(addr, ":///") || strings.HasPrefix(addr, "unix:")
}
