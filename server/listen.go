package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/internal/tlsfiles"
)

// Values of TLSConfig.ClientAuth.
const (
	// ClientAuthRequire refuses, in the handshake, a client without a
	// certificate signed by a client CA.
	ClientAuthRequire = "require"
	// ClientAuthRequest asks for a client certificate and verifies one that
	// is presented, but lets a client without one connect (it must then
	// prove who it is otherwise, with a bearer token).
	ClientAuthRequest = "request"
)

// TLSConfig serves both listeners over TLS (the configuration file's
// tls_* keys). With a certificate, every connection must speak TLS (1.2 or
// later): plaintext is refused by the handshake.
type TLSConfig struct {
	// CertFile and KeyFile hold the listeners' certificate chain and its
	// private key (PEM); both or neither. They are read again when they
	// change (looked at on a handshake, at most once a second), so a
	// renewed certificate is served without a restart; files that do not
	// load (a key written before its certificate) leave the previous pair
	// in service, and a warning is logged.
	CertFile, KeyFile string
	// ClientCAFile holds the CA certificates (PEM) that sign client
	// certificates (mTLS): the handshake asks for a client certificate and
	// verifies it against them. Read again when it changes.
	ClientCAFile string
	// ClientAuth is ClientAuthRequire or ClientAuthRequest. Default:
	// request when bearer tokens are accepted too (API keys are, unless
	// auth.api_keys.disabled; the bootstrap admin token; JWTs), so a
	// client may prove its identity either way, else require.
	ClientAuth string
}

// Enabled reports whether the listeners serve TLS.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// linkClientCAs makes one client CA serve both the handshake and
// authentication: a listener client CA turns on client certificates as
// an authentication method (identities come from auth: the subject, and
// roles by auth.identities), and auth's client CA is what the listeners
// ask client certificates of. Both may be set; auth then takes identities
// only from its own CAs.
func (c *Config) linkClientCAs() {
	if c.TLS.ClientCAFile != "" && c.Auth.MTLS.ClientCAFile == "" {
		c.Auth.MTLS.ClientCAFile = c.TLS.ClientCAFile
	}
	if c.Auth.MTLS.ClientCAFile != "" && c.TLS.ClientCAFile == "" && c.TLS.Enabled() {
		c.TLS.ClientCAFile = c.Auth.MTLS.ClientCAFile
	}
}

// validateListeners checks TLS and the transport limits.
func (c Config) validateListeners() error {
	errs := []error{c.TLS.validate(), c.Transport.validate()}
	if c.Auth.MTLS.ClientCAFile != "" && !c.TLS.Enabled() {
		errs = append(errs, errors.New("auth.mtls.client_ca_file: client certificates need TLS on the listeners; give tls_cert_file and tls_key_file (--tls-cert-file, --tls-key-file)"))
	}
	return errors.Join(errs...)
}

// validate checks the settings and loads the files, so that a missing or
// broken file is reported at start-up (and by --check-config).
func (c TLSConfig) validate() error {
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("tls_cert_file and tls_key_file (--tls-cert-file, --tls-key-file): give both or neither"))
	}
	if c.ClientCAFile != "" && !c.Enabled() {
		errs = append(errs, errors.New("tls_client_ca_file (--tls-client-ca-file): client certificates need TLS; give tls_cert_file and tls_key_file too"))
	}
	switch c.ClientAuth {
	case "", ClientAuthRequire, ClientAuthRequest:
		if c.ClientAuth != "" && c.ClientCAFile == "" {
			errs = append(errs, fmt.Errorf("tls_client_auth (--tls-client-auth) %q: needs tls_client_ca_file, the CAs that sign client certificates", c.ClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("tls_client_auth (--tls-client-auth): want %s or %s, got %q", ClientAuthRequire, ClientAuthRequest, c.ClientAuth))
	}
	if len(errs) == 0 && c.Enabled() {
		if _, err := newListenerTLS(c, tls.RequireAndVerifyClientCert, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tls12CipherSuites are the TLS 1.2 suites offered: forward secrecy and
// AEAD only (TLS 1.3's suites are not configurable, and all are fine).
var tls12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ALPN protocols: gRPC needs h2; the HTTP listener offers both.
var (
	alpnGRPC = []string{"h2"}
	alpnHTTP = []string{"h2", "http/1.1"}
)

// listenerTLS holds the listeners' certificate and client CAs, each read
// again from its files when they change (internal/tlsfiles).
type listenerTLS struct {
	cert       *tlsfiles.Reloader
	clientCAs  *tlsfiles.CAPool // nil: no client certificate is asked for
	clientAuth tls.ClientAuthType
	log        *slog.Logger
	warned     atomic.Int64 // unix nanoseconds of the last reload warning
}

// reloadWarnEvery bounds how often a certificate or CA file that does not
// load is logged (each handshake looks at the files).
const reloadWarnEvery = time.Minute

// newListenerTLS loads c's files; a client CA without ClientAuth gets
// defaultAuth.
func newListenerTLS(c TLSConfig, defaultAuth tls.ClientAuthType, log *slog.Logger) (*listenerTLS, error) {
	cert, err := tlsfiles.NewReloader(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls_cert_file, tls_key_file: %w", err)
	}
	l := &listenerTLS{cert: cert, log: log}
	if c.ClientCAFile != "" {
		if l.clientCAs, err = tlsfiles.NewCAPool(c.ClientCAFile); err != nil {
			return nil, fmt.Errorf("tls_client_ca_file: %w", err)
		}
		switch c.ClientAuth {
		case ClientAuthRequire:
			l.clientAuth = tls.RequireAndVerifyClientCert
		case ClientAuthRequest:
			l.clientAuth = tls.VerifyClientCertIfGiven
		default:
			l.clientAuth = defaultAuth
		}
	}
	return l, nil
}

// config returns the server TLS configuration offering the ALPN protocols
// protos. Its certificate, and its client CAs, are looked up per
// handshake, so replaced files take effect for the next connection.
func (l *listenerTLS) config(protos []string) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tls12CipherSuites,
		NextProtos:   protos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			l.warnReload("certificate", l.cert.Err())
			return l.cert.Certificate(), nil
		},
	}
	if l.clientCAs == nil {
		return c
	}
	c.ClientAuth = l.clientAuth
	c.ClientCAs = l.clientCAs.Pool()
	// ClientCAs has no per-handshake hook: a copy with the current pool
	// serves each connection (session tickets still use c's keys).
	perConn := c.Clone()
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		l.warnReload("client CA", l.clientCAs.Err())
		cc := perConn.Clone()
		cc.ClientCAs = l.clientCAs.Pool()
		return cc, nil
	}
	return c
}

// warnReload logs, at most once per reloadWarnEvery, that changed files
// could not be loaded and the previous ones stay in service.
func (l *listenerTLS) warnReload(what string, err error) {
	if err == nil || l.log == nil {
		return
	}
	now, last := time.Now().UnixNano(), l.warned.Load()
	if now-last < int64(reloadWarnEvery) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("listener tls: the changed "+what+" files do not load; the previous ones stay in service", "err", err)
}

// describe is the start-up log line's account of the listeners' TLS.
func (l *listenerTLS) describe() []any {
	if l == nil {
		return []any{"tls", "off"}
	}
	attrs := []any{"tls", "on"}
	if c := l.cert.Certificate(); c != nil && c.Leaf != nil {
		attrs = append(attrs, "tls_subject", c.Leaf.Subject.String(), "tls_not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	switch {
	case l.clientCAs == nil:
	case l.clientAuth == tls.RequireAndVerifyClientCert:
		attrs = append(attrs, "client_certificates", ClientAuthRequire)
	default:
		attrs = append(attrs, "client_certificates", ClientAuthRequest)
	}
	return attrs
}

// checkListenerTLS is the security report's line on listener TLS.
func checkListenerTLS(c Config) SecuritySetting {
	s := SecuritySetting{Name: "listener tls", On: c.TLS.Enabled()}
	if !s.On {
		s.Detail = "off: both listeners are plaintext, tokens and events included; set tls_cert_file and tls_key_file " +
			"(--tls-cert-file, --tls-key-file), or keep them on loopback or behind a TLS-terminating proxy"
		return s
	}
	s.Detail = "on: TLS 1.2+ with " + c.TLS.CertFile + " (re-read when it changes)"
	if sharedPort(c.HTTPAddr, c.GRPCAddr) {
		s.Detail += "; HTTP and gRPC share " + c.HTTPAddr
	}
	return s
}

// checkClientCertificates is the report's line on mTLS.
func checkClientCertificates(c Config) SecuritySetting {
	s := SecuritySetting{Name: "client certificates", On: c.TLS.ClientCAFile != ""}
	if !s.On {
		s.Detail = "off: no client certificate is asked for (tls_client_ca_file)"
		return s
	}
	mode := c.TLS.ClientAuth
	if mode == "" {
		mode = "required unless bearer tokens are accepted too, then requested"
	}
	s.Detail = "on: verified against " + c.TLS.ClientCAFile + " (" + mode + "); their subjects are identities (auth.identities maps them to roles)"
	return s
}

// checkTransportLimits is the report's line on the listeners' bounds.
func checkTransportLimits(c Config) SecuritySetting {
	t := c.Transport
	return SecuritySetting{Name: "transport limits", On: true, Detail: fmt.Sprintf(
		"max_connections %d per listener, http_body_timeout %s, max_concurrent_streams %d, gRPC messages up to %d bytes",
		t.MaxConnections, t.BodyTimeout, t.MaxConcurrentStreams, grpcMaxMessageBytes(c.Limits))}
}

// sharedPort reports whether HTTP and gRPC are served on one listener: the
// same address, with a port of its own (port 0 picks a free port for each
// listener, so two listeners, as every test and the benchmark expect).
func sharedPort(httpAddr, grpcAddr string) bool {
	if httpAddr != grpcAddr {
		return false
	}
	_, port, err := net.SplitHostPort(httpAddr)
	return err == nil && port != "0" && port != ""
}

// prepareListeners loads the listeners' TLS files and decides whether
// HTTP and gRPC share a port, before the servers are built. Unless
// TLSConfig.ClientAuth says, a client certificate is required when it is
// the only way to authenticate, and only requested when bearer tokens are
// accepted too (auth.Authenticator.ConfigureServerTLS decides).
func (s *Server) prepareListeners(authn *auth.Authenticator) error {
	s.shared = sharedPort(s.cfg.HTTPAddr, s.cfg.GRPCAddr)
	if !s.cfg.TLS.Enabled() {
		return nil
	}
	probe := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	authn.ConfigureServerTLS(probe)
	var err error
	s.tls, err = newListenerTLS(s.cfg.TLS, probe.ClientAuth, s.log)
	return err
}

// listen binds the listeners, each bounded by Transport.MaxConnections:
// one for HTTP and one for gRPC, or a single one when they share an
// address.
func (s *Server) listen() error {
	listen := s.cfg.listen
	if listen == nil {
		listen = net.Listen
	}
	m := newListenerMetrics(s.router.Registry())
	hl, err := listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	if s.shared {
		s.hl = newLimitedListener(hl, "shared", s.cfg.Transport.MaxConnections, m, s.log)
		s.gl = s.hl
		return nil
	}
	gl, err := listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		_ = hl.Close()
		return fmt.Errorf("grpc listen: %w", err)
	}
	s.hl = newLimitedListener(hl, "http", s.cfg.Transport.MaxConnections, m, s.log)
	s.gl = newLimitedListener(gl, "grpc", s.cfg.Transport.MaxConnections, m, s.log)
	return nil
}

// configureHTTP sets the HTTP server's limits and, on a shared port, the
// dispatch of gRPC calls (HTTP/2 requests of content-type
// application/grpc) to the gRPC server.
func (s *Server) configureHTTP(h *http.Server) {
	h.ReadHeaderTimeout = headerTimeout
	h.IdleTimeout = idleTimeout
	h.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: s.cfg.Transport.MaxConcurrentStreams}
	// Handshake failures and the like are a client's problem, not the
	// server's: debug level, through the server's logger.
	h.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	h.Handler = s.bodyDeadline(h.Handler)
	if !s.shared {
		return
	}
	h.Handler = grpcOrHTTP(s.grpc, h.Handler)
	if s.tls == nil {
		// Without TLS there is no ALPN: gRPC clients speak HTTP/2 with
		// prior knowledge (h2c), HTTP clients HTTP/1.1.
		h.Protocols = new(http.Protocols)
		h.Protocols.SetHTTP1(true)
		h.Protocols.SetUnencryptedHTTP2(true)
	}
}

// grpcOrHTTP sends gRPC calls to g and every other request to h.
func grpcOrHTTP(g *grpc.Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && isGRPCContentType(r.Header.Get("Content-Type")) {
			g.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isGRPCContentType reports application/grpc and its application/grpc+fmt
// forms (not application/grpc-web, which needs a translating proxy).
func isGRPCContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/grpc" || strings.HasPrefix(mt, "application/grpc+")
}

// serveListeners serves HTTP and gRPC on their listeners (one listener for
// both on a shared port), each in a goroutine the server waits for.
func (s *Server) serveListeners() {
	hl := s.hl
	if s.tls != nil {
		hl = tls.NewListener(hl, s.tls.config(alpnHTTP))
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer panics.Catch(s.log, "server.http.serve", nil)
		if err := s.http.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	if s.shared {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer panics.Catch(s.log, "server.grpc.serve", nil)
		if err := s.grpc.Serve(s.gl); err != nil {
			s.log.Error("grpc server", "err", err)
		}
	}()
}

// logListeners logs how the listeners are set up.
func (s *Server) logListeners() {
	s.log.Info("listeners", append([]any{"shared_port", s.shared, "max_connections", s.cfg.Transport.MaxConnections}, s.tls.describe()...)...)
}
