package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/auth/internal/authtest"
)

type testCA struct{ *authtest.CA }

func newTestCA(t *testing.T, name string) testCA { return testCA{authtest.NewCA(t, name)} }

func (c testCA) certPEMString() string { return string(c.CertPEM) }

// tlsOutcome is what the server side of one handshake saw.
type tlsOutcome struct {
	id  *Identity
	err error
}

// serveOnce accepts TLS connections on loopback with cfg and authenticates
// each with a: the verified chains come from a real handshake. The server
// answers "ok" or the error's text.
func serveOnce(t *testing.T, a *Authenticator, cfg *tls.Config, bearerTok string) (string, chan tlsOutcome) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan tlsOutcome, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				out <- tlsOutcome{err: err}
				c.Close()
				continue
			}
			st := tc.ConnectionState()
			id, err := a.Authenticate(context.Background(), Credentials{
				Bearer: bearerTok, VerifiedChains: st.VerifiedChains, PeerCertificates: st.PeerCertificates, Remote: c.RemoteAddr().String(),
			})
			out <- tlsOutcome{id: id, err: err}
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), out
}

// dial connects with an optional client certificate and reads the answer.
// In TLS 1.3 the client finishes its handshake before the server checks its
// certificate, so a refusal shows on the read.
func dial(addr string, ca *authtest.CA, cert *tls.Certificate) error {
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Always send it: Go's client would otherwise leave out a
		// certificate whose CA the server did not list, and the test wants
		// the server to see it.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err == nil && string(b) != "ok" {
		return errors.New("connection closed without an answer")
	}
	return err
}

func TestMTLS(t *testing.T) {
	serverCA := authtest.NewCA(t, "server-ca")
	clientCA := newTestCA(t, "client-ca")
	otherCA := authtest.NewCA(t, "other-ca")
	cfg := Config{
		AdminToken: testAdminToken,
		APIKeys:    APIKeyConfig{Disabled: true},
		MTLS:       MTLSConfig{ClientCAFile: writeFile(t, "ca.pem", clientCA.certPEMString())},
		Identities: []StaticIdentity{
			{Subject: "spiffe://shop/ingest", Roles: []Role{RolePublisher}, Scope: Scope{Sources: []string{"/shop/"}}},
			{Subject: "ops-console", Roles: []Role{RoleOperator}},
		},
	}
	a := newAuthenticator(t, cfg, nil)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{serverCA.Server(t)}, MinVersion: tls.VersionTLS12}
	a.ConfigureServerTLS(srvCfg)
	if srvCfg.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Fatalf("with a bearer method on, a certificate is optional; got %v", srvCfg.ClientAuth)
	}
	addr, out := serveOnce(t, a, srvCfg, "")

	t.Run("URI SAN wins over CN", func(t *testing.T) {
		c := clientCA.Client(t, "ignored-cn", "spiffe://shop/ingest")
		if err := dial(addr, serverCA, &c); err != nil {
			t.Fatal(err)
		}
		o := <-out
		if o.err != nil || o.id.Subject != "spiffe://shop/ingest" || o.id.Method != MethodMTLS || !o.id.Expires.Equal(c.Leaf.NotAfter) {
			t.Fatalf("%+v %v", o.id, o.err)
		}
		if o.id.AllowPublish("/shop/a", "t") != nil || o.id.AllowPublish("/bank/a", "t") == nil {
			t.Fatal("the static identity's scope is not applied")
		}
		if !strings.HasPrefix(o.id.Remote, "127.0.0.1:") {
			t.Fatalf("remote %q", o.id.Remote)
		}
	})
	t.Run("common name", func(t *testing.T) {
		c := clientCA.Client(t, "ops-console", "")
		if err := dial(addr, serverCA, &c); err != nil {
			t.Fatal(err)
		}
		o := <-out
		if o.err != nil || o.id.Subject != "ops-console" || o.id.Allow(PermTriggersWrite) != nil {
			t.Fatalf("%+v %v", o.id, o.err)
		}
	})
	t.Run("unmapped subject has no roles", func(t *testing.T) {
		c := clientCA.Client(t, "stranger", "")
		if err := dial(addr, serverCA, &c); err != nil {
			t.Fatal(err)
		}
		o := <-out
		if o.err != nil || o.id.Subject != "stranger" || len(o.id.Permissions()) != 0 {
			t.Fatalf("%+v %v", o.id, o.err)
		}
	})
	t.Run("certificate from another CA fails the handshake", func(t *testing.T) {
		c := otherCA.Client(t, "ops-console", "")
		err := dial(addr, serverCA, &c)
		o := <-out
		if o.err == nil || o.id != nil {
			t.Fatalf("the server accepted a foreign certificate: %+v", o.id)
		}
		if err == nil {
			t.Fatal("the client saw no error")
		}
	})
	t.Run("no certificate, no token", func(t *testing.T) {
		if err := dial(addr, serverCA, nil); err != nil {
			t.Fatal(err)
		}
		o := <-out
		if !errors.Is(o.err, ErrUnauthenticated) || !strings.Contains(o.err.Error(), "client certificate") {
			t.Fatalf("%v", o.err)
		}
	})
}

// TestMTLSChecksChainsItself: when the TLS layer did not verify (it only
// requested a certificate) or trusted more CAs than the client CA, the
// authenticator verifies against its own client CA.
func TestMTLSChecksChainsItself(t *testing.T) {
	serverCA := authtest.NewCA(t, "server-ca")
	clientCA := newTestCA(t, "client-ca")
	otherCA := authtest.NewCA(t, "other-ca")
	a := newAuthenticator(t, Config{APIKeys: APIKeyConfig{Disabled: true},
		MTLS:       MTLSConfig{ClientCAFile: writeFile(t, "ca.pem", clientCA.certPEMString())},
		Identities: []StaticIdentity{{Subject: "svc", Roles: []Role{RoleViewer}}}}, nil)

	probe := &tls.Config{}
	a.ConfigureServerTLS(probe)
	if probe.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("with certificates the only method, one is required; got %v", probe.ClientAuth)
	}

	unverified := &tls.Config{Certificates: []tls.Certificate{serverCA.Server(t)}, ClientAuth: tls.RequireAnyClientCert}
	addr, out := serveOnce(t, a, unverified, "")
	good, bad := clientCA.Client(t, "svc", ""), otherCA.Client(t, "svc", "")
	if err := dial(addr, serverCA, &good); err != nil {
		t.Fatal(err)
	}
	if o := <-out; o.err != nil || o.id.Subject != "svc" {
		t.Fatalf("%+v %v", o.id, o.err)
	}
	if err := dial(addr, serverCA, &bad); err != nil {
		t.Fatal(err)
	}
	if o := <-out; !errors.Is(o.err, ErrUnauthenticated) {
		t.Fatalf("a certificate of another CA passed: %+v %v", o.id, o.err)
	}

	pool := clientCA.Pool()
	pool.AddCert(otherCA.Cert)
	wide := &tls.Config{Certificates: []tls.Certificate{serverCA.Server(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	addr, out = serveOnce(t, a, wide, "")
	if err := dial(addr, serverCA, &bad); err != nil {
		t.Fatal(err)
	}
	if o := <-out; !errors.Is(o.err, ErrUnauthenticated) {
		t.Fatalf("a chain verified against a CA other than the client CA passed: %+v %v", o.id, o.err)
	}
}

// TestBearerDecidesOverCertificate: with both presented, the token decides
// and a bad token is not rescued by a good certificate.
func TestBearerDecidesOverCertificate(t *testing.T) {
	serverCA := authtest.NewCA(t, "server-ca")
	clientCA := newTestCA(t, "client-ca")
	a := newAuthenticator(t, Config{AdminToken: testAdminToken, APIKeys: APIKeyConfig{Disabled: true},
		MTLS:       MTLSConfig{ClientCAFile: writeFile(t, "ca.pem", clientCA.certPEMString())},
		Identities: []StaticIdentity{{Subject: "svc", Roles: []Role{RoleViewer}}}}, nil)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{serverCA.Server(t)}}
	a.ConfigureServerTLS(srvCfg)
	c := clientCA.Client(t, "svc", "")

	addr, out := serveOnce(t, a, srvCfg, testAdminToken)
	if err := dial(addr, serverCA, &c); err != nil {
		t.Fatal(err)
	}
	if o := <-out; o.err != nil || o.id.Method != MethodBootstrap {
		t.Fatalf("%+v %v", o.id, o.err)
	}
	addr, out = serveOnce(t, a, srvCfg, "wrong-token")
	if err := dial(addr, serverCA, &c); err != nil {
		t.Fatal(err)
	}
	if o := <-out; !errors.Is(o.err, ErrUnauthenticated) {
		t.Fatalf("a bad token was rescued by the certificate: %+v %v", o.id, o.err)
	}
}
