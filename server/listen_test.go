package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/internal/testpki"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// pki is a server certificate and files for a TLS test server.
type pki struct {
	dir               string
	ca                *testpki.CA
	certFile, keyFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), ca: testpki.NewCA(t, "switchyard test CA")}
	p.certFile, p.keyFile = p.ca.Issue(t, "switchyard-1", "127.0.0.1", "localhost").Write(t, p.dir, "server")
	return p
}

// startListeners starts a server on the embedded store with cfg's listener
// settings and loopback addresses (port 0 unless tweak says otherwise).
func startListeners(t *testing.T, tweak func(*Config)) *Server {
	t.Helper()
	cfg := Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(context.Background(), cfg)
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// withTLS serves p's certificate.
func (p *pki) withTLS(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = p.certFile, p.keyFile }

// publishers maps certificate subjects to the publisher role: a client CA
// turns authentication on, and a certificate's subject is an identity.
func publishers(c *Config, subjects ...string) {
	for _, s := range subjects {
		c.Auth.Identities = append(c.Auth.Identities, auth.StaticIdentity{Subject: s, Method: auth.MethodMTLS, Roles: []auth.Role{auth.RolePublisher}})
	}
}

// sharePort makes HTTP and gRPC share one port picked by the system.
func sharePort(t *testing.T, c *Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.HTTPAddr, c.GRPCAddr = ln.Addr().String(), ln.Addr().String()
	used := false
	c.listen = func(_, addr string) (net.Listener, error) {
		require.False(t, used, "a shared port is bound once")
		require.Equal(t, ln.Addr().String(), addr)
		used = true
		return ln, nil
	}
}

// clientTLS trusts ca and presents cert (if any) whatever CAs the server
// names as acceptable, as tlsfiles does: the server must do the refusing.
func clientTLS(ca *testpki.CA, cert *testpki.Leaf) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if cert != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }
	}
	return c
}

// httpClient is an HTTP client (HTTP/2 when the server offers it) whose
// connections are closed before the server shuts down, which would
// otherwise wait for them.
func httpClient(t *testing.T, tc *tls.Config) *http.Client {
	// ForceAttemptHTTP2 would add h2 to a config that offers only
	// http/1.1.
	only1 := tc != nil && len(tc.NextProtos) == 1 && tc.NextProtos[0] == "http/1.1"
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: !only1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

const structuredEvent = `{"specversion":"1.0","id":"1","source":"/tls","type":"t"}`

// postEvent posts one structured event and returns the status, the
// protocol and the body (or the error).
func postEvent(c *http.Client, url string) (int, string, string) {
	resp, err := c.Post(url+"/events", "application/cloudevents+json", strings.NewReader(structuredEvent))
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Proto, string(b)
}

func grpcConn(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// grpcPublish publishes one event on cc, returning the peer it reached.
func grpcPublish(cc *grpc.ClientConn) (*peer.Peer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	_, err := switchyardv1.NewEventServiceClient(cc).Publish(ctx, &switchyardv1.PublishRequest{
		Event: &pb.CloudEvent{Id: "1", Source: "/tls", SpecVersion: "1.0", Type: "t"}}, grpc.Peer(&p))
	return &p, err
}

// TestTLSListenersRefusePlaintext: with a certificate both listeners speak
// TLS only; a TLS client that trusts the CA publishes over HTTP (1.1 and
// 2) and gRPC; nothing below TLS 1.2 is accepted.
func TestTLSListenersRefusePlaintext(t *testing.T) {
	p := newPKI(t)
	s := startListeners(t, p.withTLS)
	require.NotEqual(t, s.HTTPAddr(), s.GRPCAddr())

	// Plaintext HTTP gets the TLS server's refusal, never the handler.
	resp, err := http.Post("http://"+s.HTTPAddr()+"/events", "application/cloudevents+json", strings.NewReader(structuredEvent))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), "HTTPS")

	// Plaintext gRPC cannot call.
	_, err = grpcPublish(grpcConn(t, s.GRPCAddr(), insecure.NewCredentials()))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// TLS works, over HTTP/2 and HTTP/1.1.
	st, proto, msg := postEvent(httpClient(t, clientTLS(p.ca, nil)), "https://"+s.HTTPAddr())
	require.Equal(t, http.StatusAccepted, st, "%v", msg)
	require.Equal(t, "HTTP/2.0", proto)
	h1 := clientTLS(p.ca, nil)
	h1.NextProtos = []string{"http/1.1"}
	st, proto, msg = postEvent(httpClient(t, h1), "https://"+s.HTTPAddr())
	require.Equal(t, http.StatusAccepted, st, "%v", msg)
	require.Equal(t, "HTTP/1.1", proto)
	pr, err := grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, nil))))
	require.NoError(t, err)
	require.GreaterOrEqual(t, pr.AuthInfo.(credentials.TLSInfo).State.Version, uint16(tls.VersionTLS12))

	// A client that trusts another CA does not get in either.
	other := testpki.NewCA(t, "another CA")
	_, err = grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(other, nil))))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// TLS 1.1 and below are refused by both listeners.
	for _, addr := range []string{s.HTTPAddr(), s.GRPCAddr()} {
		old := clientTLS(p.ca, nil)
		old.MaxVersion = tls.VersionTLS11
		_, err := tls.Dial("tcp", addr, old)
		require.Error(t, err, "TLS 1.1 to %s", addr)
	}
}

// TestMTLSRefusesAnotherCA: with a client CA, a client certificate from
// another CA fails the handshake on both listeners, and one from the CA is
// an identity (its subject, with the roles auth.identities gives it). With
// "require" a client without a certificate fails the handshake too; with
// "request" it connects, and without a bearer token is refused as
// unauthenticated.
func TestMTLSRefusesAnotherCA(t *testing.T) {
	p := newPKI(t)
	clients := testpki.NewCA(t, "client CA")
	caFile := clients.WriteCA(t, p.dir, "clients.pem")
	good := clients.Issue(t, "spiffe-publisher")
	stranger := testpki.NewCA(t, "someone else's CA").Issue(t, "intruder")

	for _, mode := range []string{ClientAuthRequire, ClientAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			s := startListeners(t, func(c *Config) {
				p.withTLS(c)
				c.TLS.ClientCAFile, c.TLS.ClientAuth = caFile, mode
				publishers(c, "spiffe-publisher")
			})
			require.Equal(t, caFile, s.cfg.Auth.MTLS.ClientCAFile, "the client CA is auth's")
			require.True(t, s.authn.Enabled())
			https := "https://" + s.HTTPAddr()

			st, _, msg := postEvent(httpClient(t, clientTLS(p.ca, good)), https)
			require.Equal(t, http.StatusAccepted, st, "%v", msg)
			_, err := grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, good))))
			require.NoError(t, err)

			st, _, msg = postEvent(httpClient(t, clientTLS(p.ca, stranger)), https)
			require.Zero(t, st, "a certificate from another CA: %s", msg)
			_, err = grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, stranger))))
			require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

			st, _, msg = postEvent(httpClient(t, clientTLS(p.ca, nil)), https)
			_, gerr := grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, nil))))
			if mode == ClientAuthRequire {
				require.Zero(t, st, "without a certificate: %s", msg)
				require.Equal(t, codes.Unavailable, status.Code(gerr), "%v", gerr)
			} else {
				require.Equal(t, http.StatusUnauthorized, st, "%s", msg)
				require.Equal(t, codes.Unauthenticated, status.Code(gerr), "%v", gerr)
			}

			// A certificate of the CA whose subject has no roles proves
			// who it is, and may do nothing.
			nobody := clients.Issue(t, "nobody")
			st, _, msg = postEvent(httpClient(t, clientTLS(p.ca, nobody)), https)
			require.Equal(t, http.StatusForbidden, st, "%s", msg)
		})
	}
}

// presented returns the common name of the certificate the server at addr
// presents on a new connection.
func presented(t *testing.T, addr string, tc *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, tc)
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestTLSRotationWithoutRestart replaces the certificate and key files, then
// the client CA file, while the server runs: new connections get the new
// certificate and are checked against the new CAs; a connection opened
// before goes on working.
func TestTLSRotationWithoutRestart(t *testing.T) {
	p := newPKI(t)
	oldClients := testpki.NewCA(t, "client CA 1")
	caFile := oldClients.WriteCA(t, p.dir, "clients.pem")
	oldClient := oldClients.Issue(t, "client-1")
	var logs lockedBuffer
	s := startListeners(t, func(c *Config) {
		p.withTLS(c)
		c.TLS.ClientCAFile = caFile
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		publishers(c, "client-1", "client-2")
	})

	tc := clientTLS(p.ca, oldClient)
	require.Equal(t, "switchyard-1", presented(t, s.HTTPAddr(), tc))
	require.Equal(t, "switchyard-1", presented(t, s.GRPCAddr(), tc))
	before := grpcConn(t, s.GRPCAddr(), credentials.NewTLS(tc))
	_, err := grpcPublish(before)
	require.NoError(t, err)

	p.ca.Issue(t, "switchyard-2", "127.0.0.1", "localhost").Write(t, p.dir, "server")
	testenv.Eventually(t, 10*time.Second, func() bool {
		return presented(t, s.HTTPAddr(), tc) == "switchyard-2" && presented(t, s.GRPCAddr(), tc) == "switchyard-2"
	}, "the new certificate served on both listeners")
	pr, err := grpcPublish(before)
	require.NoError(t, err, "the connection opened before the rotation")
	require.Equal(t, "switchyard-1", pr.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].Subject.CommonName)
	st, _, msg := postEvent(httpClient(t, tc), "https://"+s.HTTPAddr())
	require.Equal(t, http.StatusAccepted, st, "%v", msg)

	// A new client CA: its clients get in, the old CA's no longer do.
	newClients := testpki.NewCA(t, "client CA 2")
	newClient := newClients.Issue(t, "client-2")
	newClients.WriteCA(t, p.dir, "clients.pem")
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, err := grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, newClient))))
		return err == nil
	}, "a client of the new CA accepted")
	_, err = grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, oldClient))))
	require.Equal(t, codes.Unavailable, status.Code(err), "a client of the replaced CA: %v", err)
	st, _, msg = postEvent(httpClient(t, clientTLS(p.ca, newClient)), "https://"+s.HTTPAddr())
	require.Equal(t, http.StatusAccepted, st, "%v", msg)

	// Files that do not load leave the pair in service, and say so.
	require.NoError(t, replaceFile(p.keyFile, []byte("not a key")))
	testenv.Eventually(t, 10*time.Second, func() bool {
		return presented(t, s.HTTPAddr(), clientTLS(p.ca, newClient)) == "switchyard-2" &&
			strings.Contains(logs.String(), "the changed certificate files do not load; the previous ones stay in service")
	}, "a warning, and the previous certificate served")
}

// replaceFile replaces path atomically, as rotation tools do.
func replaceFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close(), os.Rename(f.Name(), path))
}

// lockedBuffer is a log destination the test reads while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSharedPort: HTTP and gRPC on one address are one listener: POST
// /events (HTTP/1.1 and HTTP/2) and gRPC calls (content-type
// application/grpc over HTTP/2) reach their handlers, over TLS and, with
// HTTP/2 by prior knowledge for gRPC, without.
func TestSharedPort(t *testing.T) {
	p := newPKI(t)
	for name, withTLS := range map[string]bool{"tls": true, "plaintext": false} {
		t.Run(name, func(t *testing.T) {
			s := startListeners(t, func(c *Config) {
				sharePort(t, c)
				if withTLS {
					p.withTLS(c)
				}
			})
			require.Equal(t, s.HTTPAddr(), s.GRPCAddr())
			require.True(t, s.shared)

			scheme, creds := "http://", insecure.NewCredentials()
			h1, h2 := httpClient(t, nil), httpClient(t, nil)
			if withTLS {
				scheme, creds = "https://", credentials.NewTLS(clientTLS(p.ca, nil))
				h2 = httpClient(t, clientTLS(p.ca, nil))
				only1 := clientTLS(p.ca, nil)
				only1.NextProtos = []string{"http/1.1"}
				h1 = httpClient(t, only1)
			}
			st, proto, msg := postEvent(h1, scheme+s.HTTPAddr())
			require.Equal(t, http.StatusAccepted, st, "%v", msg)
			require.Equal(t, "HTTP/1.1", proto)
			if withTLS {
				st, proto, msg = postEvent(h2, scheme+s.HTTPAddr())
				require.Equal(t, http.StatusAccepted, st, "%v", msg)
				require.Equal(t, "HTTP/2.0", proto)
			}
			resp, err := h1.Get(scheme + s.HTTPAddr() + "/healthz")
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			cc := grpcConn(t, s.GRPCAddr(), creds)
			_, err = grpcPublish(cc)
			require.NoError(t, err)
			hc, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.GetStatus())
			// A streaming method works through the shared port too.
			stream, err := switchyardv1.NewDeadLetterServiceClient(cc).ReplayDeadLetters(context.Background(),
				&switchyardv1.ReplayDeadLettersRequest{Trigger: "none", All: true})
			require.NoError(t, err)
			_, err = stream.Recv()
			require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
		})
	}
}

// TestSharedPortIdentities: on a shared port, client certificates are
// identities for gRPC calls (served through net/http) and HTTP requests
// alike.
func TestSharedPortIdentities(t *testing.T) {
	p := newPKI(t)
	clients := testpki.NewCA(t, "client CA")
	publisher := clients.Issue(t, "publisher-1")
	s := startListeners(t, func(c *Config) {
		sharePort(t, c)
		p.withTLS(c)
		c.TLS.ClientCAFile = clients.WriteCA(t, p.dir, "clients.pem")
		publishers(c, "publisher-1")
	})
	_, err := grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, publisher))))
	require.NoError(t, err)
	st, _, msg := postEvent(httpClient(t, clientTLS(p.ca, publisher)), "https://"+s.HTTPAddr())
	require.Equal(t, http.StatusAccepted, st, "%s", msg)

	// Without a certificate (only requested, as API keys are accepted too)
	// and without a token: unauthenticated, on both protocols.
	_, err = grpcPublish(grpcConn(t, s.GRPCAddr(), credentials.NewTLS(clientTLS(p.ca, nil))))
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	st, _, msg = postEvent(httpClient(t, clientTLS(p.ca, nil)), "https://"+s.HTTPAddr())
	require.Equal(t, http.StatusUnauthorized, st, "%s", msg)
}

// TestClientCAIsAuthentications: one client CA serves the handshake and
// authentication, whichever key names it; authentication on, the
// listeners' default addresses are every interface's.
func TestClientCAIsAuthentications(t *testing.T) {
	p := newPKI(t)
	caFile := p.ca.WriteCA(t, p.dir, "clients.pem")

	c := Config{}
	p.withTLS(&c)
	c.TLS.ClientCAFile = caFile
	c.setDefaults()
	require.Equal(t, caFile, c.Auth.MTLS.ClientCAFile)
	require.True(t, c.Auth.Enabled())
	require.Equal(t, DefaultHTTPAddr, c.HTTPAddr)
	require.NoError(t, c.Validate())

	c = Config{}
	p.withTLS(&c)
	c.Auth.MTLS.ClientCAFile = caFile
	c.setDefaults()
	require.Equal(t, caFile, c.TLS.ClientCAFile, "the listeners ask for auth's client certificates")

	c = Config{}
	c.Auth.MTLS.ClientCAFile = caFile
	c.setDefaults()
	require.ErrorContains(t, c.Validate(), "auth.mtls.client_ca_file: client certificates need TLS on the listeners")
}

// TestSharedPortNeedsAPort: port 0 on both addresses picks a port for each
// listener (what every test and the benchmark rely on).
func TestSharedPortNeedsAPort(t *testing.T) {
	require.True(t, sharedPort("127.0.0.1:8443", "127.0.0.1:8443"))
	require.True(t, sharedPort(":8443", ":8443"))
	require.False(t, sharedPort("127.0.0.1:0", "127.0.0.1:0"))
	require.False(t, sharedPort(":8080", ":9090"))
	require.False(t, sharedPort("127.0.0.1:8443", "localhost:8443"))
}

func TestTLSConfigValidation(t *testing.T) {
	p := newPKI(t)
	caFile := p.ca.WriteCA(t, p.dir, "ca.pem")
	for name, tc := range map[string]struct {
		cfg  TLSConfig
		want []string // substrings; none: valid
	}{
		"off":                     {},
		"cert and key":            {cfg: TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile}},
		"with a client CA":        {cfg: TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: caFile, ClientAuth: ClientAuthRequest}},
		"cert without key":        {cfg: TLSConfig{CertFile: p.certFile}, want: []string{"tls_cert_file and tls_key_file", "give both"}},
		"client CA without cert":  {cfg: TLSConfig{ClientCAFile: caFile}, want: []string{"tls_client_ca_file", "need TLS"}},
		"client auth without CA":  {cfg: TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile, ClientAuth: ClientAuthRequire}, want: []string{"tls_client_auth", "needs tls_client_ca_file"}},
		"unknown client auth":     {cfg: TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: caFile, ClientAuth: "maybe"}, want: []string{`tls_client_auth (--tls-client-auth): want require or request, got "maybe"`}},
		"missing cert file":       {cfg: TLSConfig{CertFile: p.dir + "/nope.crt", KeyFile: p.keyFile}, want: []string{"tls_cert_file, tls_key_file", "nope.crt"}},
		"key of another cert":     {cfg: TLSConfig{CertFile: p.certFile, KeyFile: writeTemp(t, p.ca.Issue(t, "x").KeyPEM)}, want: []string{"tls_cert_file, tls_key_file", "private key does not match"}},
		"CA file without any PEM": {cfg: TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: writeTemp(t, []byte("hello"))}, want: []string{"tls_client_ca_file", "no PEM certificate"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestREADMETLSConfig: the README's TLS configuration is valid (with its
// files in place) and shares one port.
func TestREADMETLSConfig(t *testing.T) {
	p := newPKI(t)
	block := testenv.READMEBlock(t, "tls-config")
	for path, file := range map[string]string{
		"/etc/switchyard/tls/tls.crt": p.certFile, "/etc/switchyard/tls/tls.key": p.keyFile,
		"/etc/switchyard/tls/clients.pem": p.ca.WriteCA(t, p.dir, "clients.pem"),
	} {
		require.Contains(t, block, path)
		block = strings.ReplaceAll(block, path, file)
	}
	fc, err := parseFile([]byte(block), os.LookupEnv)
	require.NoError(t, err)
	var cfg Config
	fc.Apply(&cfg)
	require.NoError(t, Check(cfg))
	require.True(t, cfg.TLS.Enabled())
	require.Equal(t, ClientAuthRequire, cfg.TLS.ClientAuth)
	require.True(t, sharedPort(cfg.HTTPAddr, cfg.GRPCAddr))
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.pem")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// FuzzIsGRPCContentType: the shared port's dispatch reads a header; whatever
// it holds, gRPC is chosen only for application/grpc and its +format forms.
func FuzzIsGRPCContentType(f *testing.F) {
	for _, s := range []string{"application/grpc", "application/grpc+proto", "application/GRPC; charset=x", "application/grpc-web",
		"application/grpc-web+proto", "application/cloudevents+json", "", ";", "application/grpc+", "text/plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if !isGRPCContentType(ct) {
			return
		}
		mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
		if mt != "application/grpc" && !strings.HasPrefix(mt, "application/grpc+") {
			t.Fatalf("%q taken for gRPC", ct)
		}
	})
}
