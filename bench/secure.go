package bench

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
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/switchyard-io/switchyard/auth"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

// secure runs single's gRPC and HTTP variants against a second child
// server whose listeners serve TLS and which authenticates every call, so
// that the report shows what both cost per event beside the plaintext run
// (ratios secure_*). The server starts with a bootstrap admin token (in
// its environment), which creates the API key the publishers then send,
// as a deployment would. The child has its own key prefix, so the
// plaintext server, idle meanwhile, delivers none of its events.
func (e *env) secure(ctx context.Context) error {
	if e.tgt.proc == nil {
		e.logf("secure: needs a child server (no --server): skipped")
		return nil
	}
	dir, err := os.MkdirTemp("", "switchyard-bench-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	roots, certFile, keyFile, err := writeBenchCertificate(dir)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	prefix := e.prefix + "-secure"
	defer e.cleanupPrefix(prefix)
	args := append(e.childArgs(prefix), "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	admin := randomHex(24)
	tgt, err := startChild(ctx, e.exe, args, []string{auth.EnvAdminToken + "=" + admin, "OTEL_TRACES_EXPORTER=none"}, e.opt.Log)
	if err != nil {
		return err
	}
	defer tgt.stop(25 * time.Second)
	tgt.scheme = "https"
	e.logf("secure: server pid %d grpc %s http %s (TLS, authentication)", tgt.pid(), tgt.grpcAddr, tgt.httpAddr)

	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	dial := func(token string) (*sdk.Client, error) {
		return sdk.New(sdk.Config{Address: tgt.grpcAddr, Timeout: 30 * time.Second, Token: token,
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}})
	}
	key, err := createKey(ctx, dial, admin)
	if err != nil {
		return err
	}
	client, err := dial(key)
	if err != nil {
		return err
	}
	defer client.Close()
	// HTTP/1.1 keep-alive connections, as the plaintext variant uses.
	h1 := tc.Clone()
	h1.NextProtos = []string{"http/1.1"}
	tr := e.http.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig, tr.ForceAttemptHTTP2 = h1, false
	defer tr.CloseIdleConnections()

	// The scenarios' helpers (measure, drain, stats, the CPU meter) work on
	// e's server and clients: point them at the TLS server meanwhile.
	savedTgt, savedClient, savedEvents, savedHTTP := e.tgt, e.client, e.events, e.http
	e.tgt, e.client, e.events, e.http = tgt, client, client.Events(), &http.Client{Transport: tr, Timeout: e.http.Timeout}
	e.token = key
	defer func() {
		e.tgt, e.client, e.events, e.http = savedTgt, savedClient, savedEvents, savedHTTP
		e.token = ""
	}()

	name, typ := e.triggerName("secure"), e.eventType("secure")
	if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 128, 0); err != nil {
		return err
	}
	r := e.measure(ctx, []string{name}, e.grpcPublishers(typ))
	e.deleteTriggers(Secure, name)
	e.rep.Scenarios.Secure = r
	e.printThroughput(Secure, r)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	name, typ = e.triggerName("secure-http"), e.eventType("secure-http")
	if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 128, 0); err != nil {
		return err
	}
	h := e.measure(ctx, []string{name}, func(ctx context.Context, st *pubStats) *sync.WaitGroup { return e.httpPublishers(ctx, typ, st) })
	e.deleteTriggers(Secure+"/http", name)
	h.Publishers, h.Batch = e.opt.HTTPClients, 1
	r.HTTP = h
	e.printThroughput(Secure+"/http", h)
	if s := e.rep.Scenarios.Single; s != nil {
		e.printf("%-12s server CPU µs/event: gRPC plaintext %.1f, TLS+API key %.1f; HTTP plaintext %.1f, TLS+API key %.1f",
			Secure, s.Usage.ServerUSPerOp, r.Usage.ServerUSPerOp, httpUS(s.HTTP), h.Usage.ServerUSPerOp)
	}
	return ctx.Err()
}

// createKey has the bootstrap admin create the API key the benchmark
// publishes and manages its triggers with.
func createKey(ctx context.Context, dial func(token string) (*sdk.Client, error), admin string) (string, error) {
	c, err := dial(admin)
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.Tokens().CreateToken(ctx, &switchyardv1.CreateTokenRequest{
		Name: "bench-" + randomHex(4), Roles: []string{string(auth.RolePublisher), string(auth.RoleOperator)}})
	if err != nil {
		return "", fmt.Errorf("create the API key: %w", err)
	}
	return res.GetSecret(), nil
}

func httpUS(r *ThroughputResult) float64 {
	if r == nil {
		return 0
	}
	return r.Usage.ServerUSPerOp
}

// writeBenchCertificate writes a CA-signed certificate for 127.0.0.1 and
// its key to dir, returning the pool holding the CA.
func writeBenchCertificate(dir string) (roots *x509.CertPool, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchyard bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "switchyard bench"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	err = errors.Join(
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600),
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return roots, certFile, keyFile, err
}
