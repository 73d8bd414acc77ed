package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// TLSConfig connects to Switchyard over TLS. The zero value verifies the
// server's certificate against the system's roots and sends no client
// certificate.
type TLSConfig struct {
	// CAFile holds the PEM certificates to trust instead of the system's
	// roots (a private CA).
	CAFile string
	// CertFile and KeyFile hold a client certificate and its key (PEM), for
	// servers that authenticate clients by certificate (mTLS). Both or
	// neither.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry, when it
	// differs from the address's host (an IP address, a load balancer).
	ServerName string
}

// config builds the tls.Config, reading the files.
func (t *TLSConfig) config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("switchyard: config: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("switchyard: config: TLS CA: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("switchyard: config: a TLS client certificate needs both CertFile and KeyFile")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("switchyard: config: TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ErrPlaintextToken is wrapped by the error of New, or of a call, that
// would send Config.Token unencrypted to an address beyond loopback.
var ErrPlaintextToken = errors.New("switchyard: refusing to send the token over a plaintext connection to a non-loopback address")

// tokenCredentials sends the bearer token with every call. Whether the
// connection may carry it is decided per call from the connection's
// security level, since DialOptions may bring their own transport
// credentials: TLS always may; plaintext only to a loopback address, or
// when AllowPlaintextToken says so.
type tokenCredentials struct {
	header     map[string]string
	plainOK    bool // loopback target, or AllowPlaintextToken
	targetHost string
}

func newTokenCredentials(cfg Config) *tokenCredentials {
	return &tokenCredentials{
		header:     map[string]string{"authorization": "Bearer " + cfg.Token},
		plainOK:    cfg.AllowPlaintextToken || isLoopbackTarget(cfg.Address),
		targetHost: cfg.Address,
	}
}

func (c *tokenCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if !c.plainOK {
		ri, _ := credentials.RequestInfoFromContext(ctx)
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, status.Errorf(codes.Unauthenticated, "%v (%s): use TLS (Config.TLS, --tls-ca) or set AllowPlaintextToken", ErrPlaintextToken, c.targetHost)
		}
	}
	return c.header, nil
}

// RequireTransportSecurity is false so that a loopback server without TLS
// can be reached; GetRequestMetadata enforces the rule instead, failing
// the call with UNAUTHENTICATED (the one code gRPC lets credentials
// report) wrapping ErrPlaintextToken's text.
func (c *tokenCredentials) RequireTransportSecurity() bool { return false }

// isLoopbackTarget reports whether a gRPC target reaches this machine only:
// a unix socket, or a host that is "localhost" or a loopback IP.
func isLoopbackTarget(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	if i := strings.Index(target, ":///"); i >= 0 {
		target = target[i+4:]
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
