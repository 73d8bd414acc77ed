package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/tlsfiles"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
)

// Connections are shared by the triggers aimed at the same target with the
// same settings, and only by them: a gRPC connection (with its
// InvokeStream) per address, TLS settings and bearer secret, since a TLS
// client certificate and per-RPC credentials belong to the connection; an
// HTTP client per TLS settings, since Go's connection pool is keyed by host
// alone. Two triggers that differ in any of these never share a
// connection.

// grpcConn is one gRPC connection to a target, with its stream state.
type grpcConn struct {
	cc   *grpc.ClientConn
	addr string // host:port, for logs
	st   streamTarget
	// forbidden is set when the egress guard refused the connection's
	// latest dial, cleared when a dial succeeds: gRPC reports a failed
	// dial as UNAVAILABLE, without the error that says why.
	forbidden atomic.Pointer[egress.ForbiddenError]
}

// plainConn returns the plaintext connection to addr, without
// credentials.
func (t *Targets) plainConn(addr string) (*grpcConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.grpcConnLocked(addr, nil, nil)
}

// grpcConnLocked returns the connection for addr with TLS profile prof (nil
// for plaintext) and bearer credentials (nil for none), creating it on
// first use. Called with t.mu held.
func (t *Targets) grpcConnLocked(addr string, prof *tlsProfile, bearer *secretCache) (*grpcConn, error) {
	key := addr + "\x00"
	if prof != nil {
		key += "tls\x00" + prof.key
	}
	if bearer != nil {
		key += "\x00bearer\x00" + bearer.name
	}
	if gc, ok := t.conns[key]; ok {
		return gc, nil
	}
	gc := &grpcConn{addr: addr}
	opts := append([]grpc.DialOption{}, t.opts...)
	if prof != nil {
		opts = append(opts, grpc.WithTransportCredentials(&reloadingCreds{p: prof}))
	}
	if bearer != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCreds{bearer}))
	}
	if g := t.out.Guard; g != nil {
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := g.DialContext(ctx, "tcp", addr)
			var fe *egress.ForbiddenError
			if errors.As(err, &fe) {
				gc.forbidden.Store(fe)
			} else if err == nil {
				gc.forbidden.Store(nil)
			}
			return c, err
		}))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, err
	}
	gc.cc = cc
	t.conns[key] = gc
	return gc, nil
}

// tlsProfile is a set of TLS settings for targets, with the server's
// defaults filled in and the files behind them reloaded when they change.
type tlsProfile struct {
	key        string             // identifies the settings
	ca         *tlsfiles.CAPool   // nil: system roots
	cert       *tlsfiles.Reloader // nil: no client certificate
	serverName string             // "" : the target's host
}

// empty reports whether the profile is plain TLS with the system roots.
func (p *tlsProfile) empty() bool { return p.ca == nil && p.cert == nil && p.serverName == "" }

// config returns a tls.Config for one connection to host: built per
// connection, so that a CA bundle changed on disk applies to the next
// connection (a client's tls.Config has no hook for its roots).
func (p *tlsProfile) config(host string, nextProtos []string) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, NextProtos: nextProtos}
	if p.serverName != "" {
		c.ServerName = p.serverName
	}
	if p.ca != nil {
		c.RootCAs = p.ca.Pool()
	}
	if p.cert != nil {
		c.GetClientCertificate = p.cert.GetClientCertificate
	}
	return c
}

// profileLocked returns the profile of a trigger's TLS settings merged with
// the server's defaults, loading the files on first use. Called with t.mu
// held.
func (t *Targets) profileLocked(s TLS) (*tlsProfile, error) {
	if s.CAFile == "" {
		s.CAFile = t.out.CAFile
	}
	if s.CertFile == "" && s.KeyFile == "" {
		s.CertFile, s.KeyFile = t.out.CertFile, t.out.KeyFile
	}
	key := strings.Join([]string{s.CAFile, s.CertFile, s.KeyFile, s.ServerName}, "\x00")
	if p, ok := t.profiles[key]; ok {
		return p, nil
	}
	p := &tlsProfile{key: key, serverName: s.ServerName}
	if s.CAFile != "" {
		ca, ok := t.cas[s.CAFile]
		if !ok {
			var err error
			if ca, err = tlsfiles.NewCAPool(s.CAFile); err != nil {
				return nil, err
			}
			t.cas[s.CAFile] = ca
		}
		p.ca = ca
	}
	if s.CertFile != "" || s.KeyFile != "" {
		ck := s.CertFile + "\x00" + s.KeyFile
		cert, ok := t.certs[ck]
		if !ok {
			var err error
			if cert, err = tlsfiles.NewReloader(s.CertFile, s.KeyFile); err != nil {
				return nil, err
			}
			t.certs[ck] = cert
		}
		p.cert = cert
	}
	t.profiles[key] = p
	return p, nil
}

// reloadingCreds is gRPC transport credentials that build the TLS
// configuration per handshake from a profile (credentials.NewTLS fixes
// its roots when it is made).
type reloadingCreds struct{ p *tlsProfile }

func (c *reloadingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if c.p.serverName != "" {
		authority = c.p.serverName // NewTLS takes the server name from it
	}
	return credentials.NewTLS(c.p.config("", nil)).ClientHandshake(ctx, authority, raw)
}

func (c *reloadingCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("switchyard target credentials are for clients only")
}

func (c *reloadingCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c *reloadingCreds) Clone() credentials.TransportCredentials { return &reloadingCreds{p: c.p} }

// OverrideServerName is deprecated and unused by gRPC.
func (c *reloadingCreds) OverrideServerName(string) error { return nil }

// bearerCreds sends a secret as "authorization: Bearer ..." with every
// call (and once per InvokeStream).
type bearerCreds struct{ s *secretCache }

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	st := b.s.current()
	if st == nil || st.bearer == "" {
		return nil, status.Errorf(codes.Unavailable, "secret %s is not available", b.s.name)
	}
	return map[string]string{"authorization": st.bearer}, nil
}

// RequireTransportSecurity is false: the trigger's validation already
// limits bearer secrets to TLS and loopback targets.
func (b bearerCreds) RequireTransportSecurity() bool { return false }

// httpClient is the client of one TLS profile.
type httpClient struct {
	*http.Client
	tr *http.Transport
}

// httpClientLocked returns the client for TLS profile prof (nil: plaintext
// or https with the defaults). Called with t.mu held.
func (t *Targets) httpClientLocked(prof *tlsProfile) *httpClient {
	if prof != nil && prof.empty() {
		prof = nil
	}
	key := ""
	if prof != nil {
		key = prof.key
	}
	if c, ok := t.clients[key]; ok {
		return c
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.MaxIdleConns = 1024
	if g := t.out.Guard; g != nil {
		tr.Proxy = nil // the guard must see the target's address, not a proxy's
		tr.DialContext = g.DialContext
	}
	if prof != nil {
		tr.Proxy = nil // a proxy would take the TLS handshake out of DialTLSContext
		dial := tr.DialContext
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			c := tls.Client(raw, prof.config(host, []string{"h2", "http/1.1"}))
			if err := c.HandshakeContext(ctx); err != nil {
				_ = raw.Close()
				return nil, err
			}
			return c, nil
		}
	}
	c := &httpClient{tr: tr, Client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.clients[key] = c
	return c
}
