package sdk

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// authServer is an EventService that records what each call presented.
type authServer struct {
	switchyardv1.UnimplementedEventServiceServer
	mu    sync.Mutex
	auth  []string // authorization metadata of each call
	certs []string // common name of the client certificate of each call ("" for none)
}

func (s *authServer) Publish(ctx context.Context, _ *switchyardv1.PublishRequest) (*switchyardv1.PublishResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	cn := ""
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			cn = ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = append(s.auth, strings.Join(md.Get("authorization"), "|"))
	s.certs = append(s.certs, cn)
	return &switchyardv1.PublishResponse{}, nil
}

func (s *authServer) calls() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...), append([]string(nil), s.certs...)
}

func startAuthServer(t *testing.T, creds credentials.TransportCredentials) (*authServer, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	f := &authServer{}
	switchyardv1.RegisterEventServiceServer(srv, f)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-served })
	return f, lis.Addr().String()
}

// testPKI is a CA with a server certificate for localhost/127.0.0.1 and a
// client certificate, written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, server bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost", "switchyard.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pki := testPKI{pool: x509.NewCertPool()}
	pki.pool.AddCert(ca)
	pki.caFile = write("ca.pem", "CERTIFICATE", caDER)
	sDER, sKey := issue(2, "localhost", true)
	pki.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := issue(3, "sdk-client", false)
	pki.clientCert = write("client.pem", "CERTIFICATE", cDER)
	keyDER, _ := x509.MarshalECPrivateKey(cKey)
	pki.clientKey = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return pki
}

// TestTokenIsSentAsBearer: Config.Token goes with every call as
// "authorization: Bearer …", to a loopback server without TLS too.
func TestTokenIsSentAsBearer(t *testing.T) {
	srv, addr := startAuthServer(t, nil)
	c := newClient(t, Config{Address: addr, Token: "syk_abc_def"})
	for range 2 {
		if err := c.Publish(testCtx(t), testEvent("1", nil)); err != nil {
			t.Fatal(err)
		}
	}
	none := newClient(t, Config{Address: addr})
	if err := none.Publish(testCtx(t), testEvent("2", nil)); err != nil {
		t.Fatal(err)
	}
	got, _ := srv.calls()
	if strings.Join(got, ",") != "Bearer syk_abc_def,Bearer syk_abc_def," {
		t.Fatalf("authorization seen: %q", got)
	}
}

// TestTokenNeverInPlaintextBeyondLoopback: a token bound for a non-loopback
// address over plaintext is refused by New when that is certain, and per
// call otherwise (a resolver maps the name to the loopback test server,
// which must see no call); AllowPlaintextToken lets it through.
func TestTokenNeverInPlaintextBeyondLoopback(t *testing.T) {
	_, err := New(Config{Address: "switchyard.example:9090", Token: "t"})
	if !errors.Is(err, ErrPlaintextToken) {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Config{Address: "switchyard.example:9090", Token: "t", AllowPlaintextToken: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Address: "10.0.0.1:9090", Token: "t", TLS: &TLSConfig{}}); err != nil {
		t.Fatalf("with TLS: %v", err)
	}

	srv, addr := startAuthServer(t, nil)
	dial := func(allow bool) *Client {
		r := manual.NewBuilderWithScheme("sytest")
		r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: addr}}})
		return newClient(t, Config{Address: "sytest:///switchyard.example:9090", Token: "secret-token", AllowPlaintextToken: allow,
			DialOptions: []grpc.DialOption{grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials())}})
	}
	err = dial(false).Publish(testCtx(t), testEvent("1", nil))
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "refusing to send the token") {
		t.Fatalf("plaintext beyond loopback: %v", err)
	}
	if got, _ := srv.calls(); len(got) != 0 {
		t.Fatalf("the server saw %d calls", len(got))
	}
	if err := dial(true).Publish(testCtx(t), testEvent("2", nil)); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.calls(); len(got) != 1 || got[0] != "Bearer secret-token" {
		t.Fatalf("with AllowPlaintextToken: %q", got)
	}
}

// TestTLS: Config.TLS connects to a TLS server, verifying its certificate
// against CAFile (or the system roots, which do not know the test CA) and
// ServerName, and presents a client certificate to an mTLS server.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv, addr := startAuthServer(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}))
	ok := newClient(t, Config{Address: addr, TLS: &TLSConfig{CAFile: pki.caFile}, Token: "over-tls", Timeout: 5 * time.Second})
	if err := ok.Publish(testCtx(t), testEvent("1", nil)); err != nil {
		t.Fatal(err)
	}
	named := newClient(t, Config{Address: addr, TLS: &TLSConfig{CAFile: pki.caFile, ServerName: "switchyard.test"}, Timeout: 5 * time.Second})
	if err := named.Publish(testCtx(t), testEvent("2", nil)); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*TLSConfig{
		"system roots":       {},
		"wrong server name":  {CAFile: pki.caFile, ServerName: "other.test"},
		"plaintext":          nil,
		"CA of another kind": {CAFile: pki.clientCert}, // a leaf, not the CA that signed the server
	} {
		c := newClient(t, Config{Address: addr, TLS: cfg, Timeout: 2 * time.Second})
		if err := c.Publish(testCtx(t), testEvent("x", nil)); err == nil {
			t.Errorf("%s: published", name)
		}
	}
	if got, _ := srv.calls(); len(got) != 2 || got[0] != "Bearer over-tls" || got[1] != "" {
		t.Fatalf("server saw %q", got)
	}

	mtlsSrv, mtlsAddr := startAuthServer(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pki.server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool, MinVersion: tls.VersionTLS12}))
	withCert := newClient(t, Config{Address: mtlsAddr, TLS: &TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, Timeout: 5 * time.Second})
	if err := withCert.Publish(testCtx(t), testEvent("m1", nil)); err != nil {
		t.Fatal(err)
	}
	without := newClient(t, Config{Address: mtlsAddr, TLS: &TLSConfig{CAFile: pki.caFile}, Timeout: 2 * time.Second})
	if err := without.Publish(testCtx(t), testEvent("m2", nil)); err == nil {
		t.Fatal("published to an mTLS server without a client certificate")
	}
	if _, certs := mtlsSrv.calls(); len(certs) != 1 || certs[0] != "sdk-client" {
		t.Fatalf("client certificates seen: %q", certs)
	}

	for name, c := range map[string]Config{
		"missing CA file":               {TLS: &TLSConfig{CAFile: filepath.Join(t.TempDir(), "none.pem")}},
		"CA file without a certificate": {TLS: &TLSConfig{CAFile: pki.clientKey}},
		"cert without key":              {TLS: &TLSConfig{CertFile: pki.clientCert}},
		"token with space":              {Token: "a b"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func FuzzIsLoopbackTarget(f *testing.F) {
	for _, s := range []string{"localhost:9090", "127.0.0.1:1", "[::1]:1", "dns:///localhost:1", "unix:///run/s.sock",
		"10.0.0.1:1", "example.com:1", "dns:///example.com:1", "localhost.example.com:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !isLoopbackTarget(target) {
			return
		}
		if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
			return
		}
		rest := target
		if i := strings.Index(rest, ":///"); i >= 0 {
			rest = rest[i+4:]
		}
		host, _, err := net.SplitHostPort(rest)
		if err != nil {
			host = rest
		}
		if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("%q taken for loopback", target)
		}
	})
}
