package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testpki"
)

const fast = 5 * time.Millisecond

func TestReloaderServesRotatedCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, "one", "127.0.0.1").Write(t, dir, "srv")
	r, err := NewReloader(certFile, keyFile, WithCheckInterval(fast))
	require.NoError(t, err)
	require.NoError(t, r.Err())

	// A real TLS server whose certificate comes from the reloader.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	served := func() string {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		require.NoError(t, err)
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	require.Equal(t, "one", served())

	ca.Issue(t, "two", "127.0.0.1").Write(t, dir, "srv")
	require.Eventually(t, func() bool { return served() == "two" }, 5*time.Second, fast)
	require.NoError(t, r.Err())

	// A key that does not match its certificate (a rotation half done) is
	// not used; the previous pair stays in service until the pair is whole.
	three := ca.Issue(t, "three", "127.0.0.1")
	four := ca.Issue(t, "four", "127.0.0.1")
	require.NoError(t, os.WriteFile(certFile, three.CertPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, four.KeyPEM, 0o600))
	require.Eventually(t, func() bool { return r.Err() != nil }, 5*time.Second, fast)
	require.Equal(t, "two", served())
	require.NoError(t, os.WriteFile(keyFile, three.KeyPEM, 0o600))
	require.Eventually(t, func() bool { return served() == "three" }, 5*time.Second, fast)
	require.NoError(t, r.Err())

	// A file that disappears keeps the pair in service and is reported.
	require.NoError(t, os.Remove(keyFile))
	require.Eventually(t, func() bool { return r.Err() != nil }, 5*time.Second, fast)
	require.Equal(t, "three", served())
}

func TestReloaderClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	srv := ca.Issue(t, "server", "127.0.0.1")
	certFile, keyFile := ca.Issue(t, "client-a").Write(t, dir, "cli")
	r, err := NewReloader(certFile, keyFile, WithCheckInterval(fast))
	require.NoError(t, err)

	got := make(chan string, 16)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv.TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				got <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			_ = c.Close()
		}
	}()
	dial := func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", GetClientCertificate: r.GetClientCertificate})
		require.NoError(t, err)
		_, _ = c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the client's handshake
		_ = c.Close()
	}
	dial()
	require.Equal(t, "client-a", <-got)
	ca.Issue(t, "client-b").Write(t, dir, "cli")
	require.Eventually(t, func() bool { dial(); return <-got == "client-b" }, 5*time.Second, fast)
}

func TestCAPoolReloads(t *testing.T) {
	dir := t.TempDir()
	one, two := testpki.NewCA(t, "one"), testpki.NewCA(t, "two")
	file := one.WriteCA(t, dir, "ca.pem")
	p, err := NewCAPool(file, WithCheckInterval(fast))
	require.NoError(t, err)
	leafTwo := two.Issue(t, "x", "x.test")
	parsed, err := x509.ParseCertificate(leafTwo.TLS.Certificate[0])
	require.NoError(t, err)
	verifies := func() bool {
		_, err := parsed.Verify(x509.VerifyOptions{Roots: p.Pool(), DNSName: "x.test"})
		return err == nil
	}
	require.False(t, verifies())
	require.Len(t, p.Certificates(), 1)
	require.True(t, p.Certificates()[0].Equal(one.Cert))
	// A bundle of both.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "next.pem"), append(append([]byte{}, one.PEM...), two.PEM...), 0o600))
	require.NoError(t, os.Rename(filepath.Join(dir, "next.pem"), file))
	require.Eventually(t, verifies, 5*time.Second, fast)
	require.Len(t, p.Certificates(), 2, "the certificates follow the pool")
	require.True(t, p.Certificates()[1].Equal(two.Cert))

	// Garbage does not replace the pool.
	require.NoError(t, os.WriteFile(file, []byte("not PEM"), 0o600))
	require.Eventually(t, func() bool { return p.Err() != nil }, 5*time.Second, fast)
	require.True(t, verifies())
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, "a").Write(t, dir, "a")
	_, err := NewReloader(certFile, filepath.Join(dir, "missing.key"))
	require.ErrorContains(t, err, "missing.key")
	_, err = NewReloader(keyFile, certFile)
	require.Error(t, err)
	_, err = NewCAPool(keyFile)
	require.ErrorContains(t, err, "no PEM certificate")
	big := filepath.Join(dir, "big.pem")
	require.NoError(t, os.WriteFile(big, make([]byte, MaxFileBytes+1), 0o600))
	_, err = NewCAPool(big)
	require.ErrorContains(t, err, "larger than")
	_, err = NewCAPool(filepath.Join(dir, "none.pem"))
	require.Error(t, err)
	// Works without a listener too: the current certificate is there.
	r, err := NewReloader(certFile, keyFile)
	require.NoError(t, err)
	c, err := r.GetClientCertificate(nil)
	require.NoError(t, err)
	require.NotEmpty(t, c.Certificate)
}
