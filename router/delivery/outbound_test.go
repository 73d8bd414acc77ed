package delivery

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/secrets"
	"github.com/switchyard-io/switchyard/internal/testdns"
	"github.com/switchyard-io/switchyard/internal/testpki"
	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func countListen(t *testing.T, addr string) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	return &countingListener{Listener: ln}
}

func (l *countingListener) port() string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// noneSince proves that l accepted no connection beyond want: it connects
// once more, unguarded, and waits for that one to be counted; connections
// are accepted in order, so an earlier one would have been counted first.
func (l *countingListener) noneSince(t *testing.T, want int64) {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	_ = c.Close()
	require.Eventually(t, func() bool { return l.accepted.Load() >= want+1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, want+1, l.accepted.Load(), "a connection reached %s", l.Addr())
}

// authFunc is a function that records, per call, the client certificate's
// common name and the authorization metadata it was called with.
type authFunc struct {
	functionv1.UnimplementedFunctionServiceServer
	mu      sync.Mutex
	cns     []string
	auths   []string
	streams atomic.Int64
}

func (f *authFunc) record(ctx context.Context) {
	cn := ""
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			cn = ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cns = append(f.cns, cn)
	f.auths = append(f.auths, strings.Join(md.Get("authorization"), ","))
}

func (f *authFunc) seen() (cns, auths []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cns...), append([]string(nil), f.auths...)
}

func (f *authFunc) Invoke(ctx context.Context, _ *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	f.record(ctx)
	return &functionv1.InvokeResponse{}, nil
}

func (f *authFunc) InvokeStream(st functionv1.FunctionService_InvokeStreamServer) error {
	f.streams.Add(1)
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		for _, c := range m.GetCalls() {
			if c.GetCancel() {
				continue
			}
			f.record(st.Context())
			if err := st.Send(&functionv1.InvokeStreamResponse{Answers: []*functionv1.StreamAnswer{{Call: c.GetCall(), Response: &functionv1.InvokeResponse{}}}}); err != nil {
				return err
			}
		}
	}
}

// serveGRPC serves f on ln with opts until the test ends.
func serveGRPC(t *testing.T, ln net.Listener, f functionv1.FunctionServiceServer, opts ...grpc.ServerOption) {
	t.Helper()
	srv := grpc.NewServer(opts...)
	functionv1.RegisterFunctionServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
}

// serveHTTP serves h on ln until the test ends.
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func testEvent(t *testing.T, id string) (*pb.CloudEvent, []byte, string) {
	t.Helper()
	ev := &pb.CloudEvent{Id: id, Source: "/orders", SpecVersion: "1.0", Type: "com.example.order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{"datacontenttype": str("application/json")},
		Data:       &pb.CloudEvent_TextData{TextData: `{"total":12.5}`}}
	raw, err := proto.Marshal(ev)
	require.NoError(t, err)
	key, err := ScanEvent(raw)
	require.NoError(t, err)
	return ev, raw, key
}

func grpcAttempt(t *testing.T, addr string, ep *Endpoint) *Attempt {
	t.Helper()
	_, raw, key := testEvent(t, "e-1")
	return &Attempt{Trigger: "orders", GRPC: addr, Raw: raw, Key: key, Number: 1, Timeout: 5 * time.Second, Endpoint: ep}
}

func httpAttempt(t *testing.T, url string, ep *Endpoint) *Attempt {
	t.Helper()
	ev, raw, key := testEvent(t, "e-1")
	return &Attempt{Trigger: "orders", URL: url, Event: ev, Raw: raw, Key: key, Number: 1, Timeout: 5 * time.Second, Endpoint: ep}
}

func requireForbidden(t *testing.T, r Result, what string) {
	t.Helper()
	require.Equal(t, DeadNow, r.Verdict, "%s: %s %s", what, r.Code, r.Message)
	require.Equal(t, "TARGET_FORBIDDEN", r.Code, "%s: %s", what, r.Message)
	require.Equal(t, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_TARGET_FORBIDDEN, r.Reason, what)
	require.False(t, r.Health, "%s: a refusal says nothing of the target's health", what)
}

// With the egress guard, a target whose address (literal, IPv4-mapped, or
// resolved from a name) is in a denied range is dead at once and receives no
// connection, over gRPC and HTTP, redirects included; an allowlisted
// target still receives its events.
func TestEgressGuardRefusesDeniedTargets(t *testing.T) {
	// Denied: a function and a web target on 127.0.0.2.
	deniedGRPC := countListen(t, "127.0.0.2:0")
	serveGRPC(t, deniedGRPC, &authFunc{})
	deniedHTTP := countListen(t, "127.0.0.2:0")
	serveHTTP(t, deniedHTTP, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	// Allowed: the same on 127.0.0.1, and a web target that redirects to
	// the denied one.
	okFn := &authFunc{}
	allowedGRPC := countListen(t, "127.0.0.1:0")
	serveGRPC(t, allowedGRPC, okFn)
	var hits atomic.Int64
	allowedHTTP := countListen(t, "127.0.0.1:0")
	serveHTTP(t, allowedHTTP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.2:"+deniedHTTP.port()+"/x", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))

	dns := testdns.Start(t)
	dns.Set("fn.test", "127.0.0.2")
	dns.Set("ok.test", "127.0.0.1")
	g, err := egress.New(egress.Config{AllowTargets: []string{"127.0.0.1/32"}, Resolver: dns.Resolver()})
	require.NoError(t, err)
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Guard: g}})
	defer tg.Close()
	ctx := context.Background()

	for _, addr := range []string{"127.0.0.2:" + deniedGRPC.port(), "fn.test:" + deniedGRPC.port(), "[::ffff:127.0.0.2]:" + deniedGRPC.port(), "[::ffff:7f00:2]:" + deniedGRPC.port()} {
		for range 2 { // the connection's state after a refusal refuses again
			r := tg.Invoke(ctx, grpcAttempt(t, addr, &Endpoint{Display: "grpc://" + addr}))
			requireForbidden(t, r, addr)
		}
	}
	for _, u := range []string{"http://127.0.0.2:" + deniedHTTP.port() + "/x", "http://fn.test:" + deniedHTTP.port() + "/x", "http://[::ffff:127.0.0.2]:" + deniedHTTP.port() + "/x"} {
		requireForbidden(t, tg.Invoke(ctx, httpAttempt(t, u, &Endpoint{Display: u})), u)
	}
	r := tg.Invoke(ctx, grpcAttempt(t, "ok.test:"+allowedGRPC.port(), &Endpoint{}))
	require.Equal(t, Ack, r.Verdict, r.Message)
	r = tg.Invoke(ctx, grpcAttempt(t, "127.0.0.1:"+allowedGRPC.port(), nil))
	require.Equal(t, Ack, r.Verdict, r.Message)
	r = tg.Invoke(ctx, httpAttempt(t, "http://ok.test:"+allowedHTTP.port()+"/x", &Endpoint{}))
	require.Equal(t, Ack, r.Verdict, r.Message)
	// A redirect is an answer, not followed: nothing reaches its location.
	r = tg.Invoke(ctx, httpAttempt(t, "http://127.0.0.1:"+allowedHTTP.port()+"/redirect", &Endpoint{}))
	require.Equal(t, DeadNow, r.Verdict)
	require.Equal(t, "HTTP 307", r.Code)
	require.EqualValues(t, 2, hits.Load())
	cns, _ := okFn.seen()
	require.Len(t, cns, 2)

	deniedGRPC.noneSince(t, 0)
	deniedHTTP.noneSince(t, 0)
}

// With TLS required, plaintext targets stored before are dead at once and
// receive nothing; TLS ones are reached.
func TestRequireTLSRefusesPlaintext(t *testing.T) {
	fnLn := countListen(t, "127.0.0.1:0")
	serveGRPC(t, fnLn, &authFunc{})
	webLn := countListen(t, "127.0.0.1:0")
	serveHTTP(t, webLn, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tg := NewTargets(TargetsConfig{Outbound: Outbound{RequireTLS: true}})
	defer tg.Close()
	requireForbidden(t, tg.Invoke(context.Background(), grpcAttempt(t, fnLn.Addr().String(), &Endpoint{})), "grpc")
	requireForbidden(t, tg.Invoke(context.Background(), grpcAttempt(t, fnLn.Addr().String(), nil)), "grpc without endpoint")
	requireForbidden(t, tg.Invoke(context.Background(), httpAttempt(t, "http://"+webLn.Addr().String()+"/x", &Endpoint{})), "http")
	fnLn.noneSince(t, 0)
	webLn.noneSince(t, 0)
}

// pki is a CA with the files a test's triggers name.
type pki struct {
	dir    string
	ca     *testpki.CA
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), ca: testpki.NewCA(t, name)}
	p.caFile = p.ca.WriteCA(t, p.dir, "ca.pem")
	return p
}

// client writes a client certificate named cn and returns its paths.
func (p *pki) client(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	return p.ca.Issue(t, cn).Write(t, p.dir, cn)
}

// serverTLS is a server configuration with a certificate for hosts that
// requires a client certificate from the CA when mtls.
func (p *pki) serverTLS(t *testing.T, mtls bool, hosts ...string) *tls.Config {
	t.Helper()
	c := &tls.Config{Certificates: []tls.Certificate{p.ca.Issue(t, "server", hosts...).TLS}, MinVersion: tls.VersionTLS12}
	if mtls {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.ca.Pool()
	}
	return c
}

// invokeUntilStream invokes until the function has served a stream (the
// first attempts go unary while the connection comes up) and returns the
// last result.
func invokeUntilStream(t *testing.T, tg *Targets, f *authFunc, a func() *Attempt) Result {
	t.Helper()
	var r Result
	require.Eventually(t, func() bool {
		r = tg.Invoke(context.Background(), a())
		require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
		return f.streams.Load() > 0
	}, 10*time.Second, time.Millisecond)
	r = tg.Invoke(context.Background(), a())
	require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
	return r
}

// grpcs:// with mTLS: the function requires a client certificate; each
// trigger's certificate reaches it on a connection of its own, on unary
// calls and on streams alike; a trigger without a certificate, and one that
// trusts another CA, fail and are retried with the breaker counting.
func TestGRPCSWithMutualTLS(t *testing.T) {
	k := newPKI(t, "functions-ca")
	fn := &authFunc{}
	ln := countListen(t, "127.0.0.1:0")
	serveGRPC(t, ln, fn, grpc.Creds(credentials.NewTLS(k.serverTLS(t, true, "fn.test"))))
	addr := ln.Addr().String()
	certA, keyA := k.client(t, "trigger-a")
	certB, keyB := k.client(t, "trigger-b")

	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	epA := &Endpoint{TLS: &TLS{CAFile: k.caFile, CertFile: certA, KeyFile: keyA, ServerName: "fn.test"}}
	epB := &Endpoint{TLS: &TLS{CAFile: k.caFile, CertFile: certB, KeyFile: keyB, ServerName: "fn.test"}}
	invokeUntilStream(t, tg, fn, func() *Attempt { return grpcAttempt(t, addr, epA) })
	before := fn.streams.Load()
	for range 3 {
		r := tg.Invoke(context.Background(), grpcAttempt(t, addr, epB))
		require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
	}
	require.Eventually(t, func() bool {
		r := tg.Invoke(context.Background(), grpcAttempt(t, addr, epB))
		require.Equal(t, Ack, r.Verdict)
		return fn.streams.Load() > before
	}, 10*time.Second, time.Millisecond, "trigger B gets a stream of its own")
	cns, _ := fn.seen()
	var a, b int
	for _, cn := range cns {
		switch cn {
		case "trigger-a":
			a++
		case "trigger-b":
			b++
		default:
			t.Fatalf("call with certificate %q", cn)
		}
	}
	require.Positive(t, a)
	require.Positive(t, b)
	require.NotSame(t, epA.prep.Load().gc, epB.prep.Load().gc, "different certificates never share a connection")
	same := &Endpoint{TLS: &TLS{CAFile: k.caFile, CertFile: certA, KeyFile: keyA, ServerName: "fn.test"}}
	require.Equal(t, Ack, tg.Invoke(context.Background(), grpcAttempt(t, addr, same)).Verdict)
	require.Same(t, epA.prep.Load().gc, same.prep.Load().gc, "the same settings share one")

	// No client certificate: the function refuses the handshake. Another
	// CA: the certificate is not trusted. The server name is checked.
	otherCA := newPKI(t, "other-ca")
	for name, ep := range map[string]*Endpoint{
		"no client certificate": {TLS: &TLS{CAFile: k.caFile, ServerName: "fn.test"}},
		"wrong CA":              {TLS: &TLS{CAFile: otherCA.caFile, CertFile: certA, KeyFile: keyA, ServerName: "fn.test"}},
		"wrong server name":     {TLS: &TLS{CAFile: k.caFile, CertFile: certA, KeyFile: keyA}},
		"plaintext to TLS":      {},
	} {
		r := tg.Invoke(context.Background(), grpcAttempt(t, addr, ep))
		require.Equal(t, Retry, r.Verdict, "%s: %s %s", name, r.Code, r.Message)
		require.True(t, r.Health, name)
		require.Equal(t, "UNAVAILABLE", r.Code, "%s: %s", name, r.Message)
	}
	r := tg.Invoke(context.Background(), grpcAttempt(t, addr, &Endpoint{TLS: &TLS{CAFile: otherCA.caFile, ServerName: "fn.test"}}))
	require.Contains(t, r.Message, "certificate")
}

// Server-wide defaults: the target CA and client certificate apply to
// grpcs:// and https:// targets that name none.
func TestOutboundTLSDefaults(t *testing.T) {
	k := newPKI(t, "platform-ca")
	fn := &authFunc{}
	ln := countListen(t, "127.0.0.1:0")
	serveGRPC(t, ln, fn, grpc.Creds(credentials.NewTLS(k.serverTLS(t, true, "127.0.0.1"))))
	var webCN atomic.Value
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		webCN.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		w.WriteHeader(http.StatusNoContent)
	}))
	web.TLS = k.serverTLS(t, true, "127.0.0.1")
	web.Config.ErrorLog = log.New(io.Discard, "", 0) // a refused handshake is expected
	web.StartTLS()
	defer web.Close()

	cert, key := k.client(t, "switchyard")
	out := Outbound{CAFile: k.caFile, CertFile: cert, KeyFile: key}
	require.NoError(t, out.Validate())
	tg := NewTargets(TargetsConfig{Outbound: out})
	defer tg.Close()
	r := tg.Invoke(context.Background(), grpcAttempt(t, ln.Addr().String(), &Endpoint{TLS: &TLS{}}))
	require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
	cns, _ := fn.seen()
	require.Equal(t, []string{"switchyard"}, cns)
	r = tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/hook", &Endpoint{}))
	require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
	require.Equal(t, "switchyard", webCN.Load())

	// Without the defaults, the system roots do not know this CA.
	plain := NewTargets(TargetsConfig{})
	defer plain.Close()
	r = plain.Invoke(context.Background(), httpAttempt(t, web.URL+"/hook", nil))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "TRANSPORT", r.Code)
	require.Contains(t, r.Message, "certificate")

	require.ErrorContains(t, Outbound{CertFile: cert}.Validate(), "go together")
	require.ErrorContains(t, Outbound{CAFile: filepath.Join(k.dir, "none.pem")}.Validate(), "none.pem")
	require.Error(t, Outbound{CertFile: key, KeyFile: cert}.Validate())
}

// https:// with mTLS to one URL from two triggers with different client
// certificates: each arrives with its own; a CA bundle that does not trust
// the target fails until the file is replaced, then the next attempt
// succeeds without a restart. Missing files fail the attempt (retried),
// and a later attempt reads them again.
func TestHTTPSMutualTLSAndReload(t *testing.T) {
	k := newPKI(t, "web-ca")
	var mu sync.Mutex
	var seen []string
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	web.TLS = k.serverTLS(t, true, "hooks.test")
	web.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	web.StartTLS()
	defer web.Close()
	certA, keyA := k.client(t, "a")
	certB, keyB := k.client(t, "b")
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	for _, ep := range []*Endpoint{
		{TLS: &TLS{CAFile: k.caFile, CertFile: certA, KeyFile: keyA, ServerName: "hooks.test"}},
		{TLS: &TLS{CAFile: k.caFile, CertFile: certB, KeyFile: keyB, ServerName: "hooks.test"}},
		{TLS: &TLS{CAFile: k.caFile, CertFile: certA, KeyFile: keyA, ServerName: "hooks.test"}},
	} {
		r := tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/x", ep))
		require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
	}
	mu.Lock()
	require.Equal(t, []string{"a", "b", "a"}, seen)
	mu.Unlock()

	// A bundle of another CA, replaced by the right one while attempts go on.
	dir := t.TempDir()
	bundle := newPKI(t, "old-ca").ca.WriteCA(t, dir, "bundle.pem")
	ep := &Endpoint{TLS: &TLS{CAFile: bundle, CertFile: certA, KeyFile: keyA, ServerName: "hooks.test"}}
	r := tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/x", ep))
	require.Equal(t, Retry, r.Verdict)
	require.True(t, r.Health)
	require.Contains(t, r.Message, "certificate")
	k.ca.WriteCA(t, dir, "bundle.pem")
	require.Eventually(t, func() bool {
		return tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/x", ep)).Verdict == Ack
	}, 10*time.Second, 20*time.Millisecond)

	// Files that are not there yet.
	late := filepath.Join(t.TempDir(), "late-ca.pem")
	ep = &Endpoint{TLS: &TLS{CAFile: late, CertFile: certA, KeyFile: keyA, ServerName: "hooks.test"}}
	r = tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/x", ep))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "TLS_CONFIG", r.Code)
	require.True(t, r.Health)
	require.NoError(t, os.WriteFile(late, k.ca.PEM, 0o600))
	r = tg.Invoke(context.Background(), httpAttempt(t, web.URL+"/x", ep))
	require.Equal(t, Ack, r.Verdict, "%s %s", r.Code, r.Message)
}

// memSecrets is a secrets.Resolver over a map the test changes.
type memSecrets struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memSecrets) Lookup(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	if !ok {
		return nil, secrets.ErrNotFound
	}
	return []byte(v), nil
}

func (s *memSecrets) set(name, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = v
}

// A bearer secret reaches a grpcs:// function as authorization metadata on
// unary calls and streams, and is read again after a rotation.
func TestBearerOverGRPCS(t *testing.T) {
	k := newPKI(t, "ca")
	fn := &authFunc{}
	ln := countListen(t, "127.0.0.1:0")
	serveGRPC(t, ln, fn, grpc.Creds(credentials.NewTLS(k.serverTLS(t, false, "127.0.0.1"))))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fn-token"), []byte("tok-1\n"), 0o600))
	tg := NewTargets(TargetsConfig{Outbound: Outbound{CAFile: k.caFile, Secrets: secrets.Dir{Path: dir}}})
	tg.secretTTL = 10 * time.Millisecond
	defer tg.Close()
	ep := &Endpoint{TLS: &TLS{}, BearerSecret: "fn-token"}
	invokeUntilStream(t, tg, fn, func() *Attempt { return grpcAttempt(t, ln.Addr().String(), ep) })
	_, auths := fn.seen()
	for _, a := range auths {
		require.Equal(t, "Bearer tok-1", a)
	}
	// Rotation: new calls carry the new token (a stream carries the one it
	// was opened with; a new connection opens a new stream).
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fn-token"), []byte("tok-2"), 0o600))
	unary := NewTargets(TargetsConfig{Unary: true, Outbound: Outbound{CAFile: k.caFile, Secrets: secrets.Dir{Path: dir}}})
	unary.secretTTL = 10 * time.Millisecond
	defer unary.Close()
	require.Equal(t, Ack, unary.Invoke(context.Background(), grpcAttempt(t, ln.Addr().String(), ep)).Verdict)
	_, auths = fn.seen()
	require.Equal(t, "Bearer tok-2", auths[len(auths)-1])

	// A secret the server does not hold: retried, the breaker counting.
	r := tg.Invoke(context.Background(), grpcAttempt(t, ln.Addr().String(), &Endpoint{TLS: &TLS{}, BearerSecret: "missing"}))
	require.Equal(t, Retry, r.Verdict)
	require.True(t, r.Health)
	require.Equal(t, "SECRET_UNAVAILABLE", r.Code)
	none := NewTargets(TargetsConfig{Outbound: Outbound{CAFile: k.caFile}})
	defer none.Close()
	r = none.Invoke(context.Background(), grpcAttempt(t, ln.Addr().String(), &Endpoint{TLS: &TLS{}, BearerSecret: "fn-token"}))
	require.Equal(t, "SECRET_UNAVAILABLE", r.Code)
	require.Contains(t, r.Message, "no secret resolver")
}

// A secret that disappears keeps its last value in service; one that
// appears later is picked up.
func TestSecretCacheRefresh(t *testing.T) {
	mem := &memSecrets{m: map[string]string{"a": "one"}}
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Secrets: mem}})
	tg.mu.Lock()
	a, b := tg.secretLocked("a"), tg.secretLocked("b")
	tg.mu.Unlock()
	now := time.Now()
	require.Equal(t, "Bearer one", a.get(now).bearer)
	require.ErrorIs(t, b.get(now).err, secrets.ErrNotFound)
	mem.set("b", "two")
	require.ErrorIs(t, b.get(now).err, secrets.ErrNotFound, "not looked up again before its retry time")
	require.Equal(t, "Bearer two", b.get(now.Add(secretRetry)).bearer)
	mem.mu.Lock()
	delete(mem.m, "a")
	mem.mu.Unlock()
	require.Equal(t, "Bearer one", a.get(now.Add(secretRefresh)).bearer)
	mem.set("a", "three")
	require.Equal(t, "Bearer one", a.get(now.Add(secretRefresh)).bearer, "retry time not reached")
	require.Equal(t, "Bearer three", a.get(now.Add(secretRefresh+secretRetry)).bearer)
}

func TestWebhookKey(t *testing.T) {
	k, err := webhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	require.Len(t, k, 24)
	for _, bad := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 22)} {
		_, err := webhookKey(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), strings.TrimPrefix(bad, "whsec_"), "the secret stays out of the message")
	}
}

// Failure messages keep no credential: not the URL's query values or
// userinfo, not the bearer token, even when a target echoes the request.
func TestFailureMessagesCarryNoCredentials(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "you sent "+r.URL.String()+" with "+r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	mem := &memSecrets{m: map[string]string{"tok": "bearer-s3cret-value"}}
	tg := NewTargets(TargetsConfig{Outbound: Outbound{Secrets: mem}})
	defer tg.Close()
	u := strings.Replace(echo.URL, "http://", "http://user:pass-w0rd@", 1) + "/hook?token=query-s3cret&x=1"
	r := tg.Invoke(context.Background(), httpAttempt(t, u, &Endpoint{BearerSecret: "tok", Display: "shown"}))
	require.Equal(t, DeadNow, r.Verdict)
	require.Contains(t, r.Message, "you sent /hook?token=REDACTED")
	for _, secret := range []string{"bearer-s3cret-value", "query-s3cret", "pass-w0rd"} {
		require.NotContains(t, r.Message, secret)
	}
	// A transport error quotes the URL: not any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	r = tg.Invoke(context.Background(), httpAttempt(t, "http://"+closed+"/hook?token=query-s3cret", &Endpoint{Display: "shown"}))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "TRANSPORT", r.Code)
	require.NotContains(t, r.Message, "query-s3cret")
	require.Contains(t, r.Message, "connect")
	// gRPC: a function that echoes its metadata in an error.
	fnLn := countListen(t, "127.0.0.1:0")
	serveGRPC(t, fnLn, echoFunc{})
	r = tg.Invoke(context.Background(), grpcAttempt(t, fnLn.Addr().String(), &Endpoint{BearerSecret: "tok"}))
	require.Equal(t, DeadNow, r.Verdict, r.Message)
	require.Contains(t, r.Message, "got Bearer REDACTED")
}

type echoFunc struct {
	functionv1.UnimplementedFunctionServiceServer
}

func (echoFunc) Invoke(ctx context.Context, _ *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return nil, status.Error(codes.InvalidArgument, "got "+strings.Join(md.Get("authorization"), ","))
}
