package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// Defaults of TransportLimits.
const (
	// DefaultMaxConnections bounds the connections each listener holds. An
	// idle HTTP or gRPC connection costs some tens of KiB (buffers, TLS
	// state, a goroutine), so the default bounds that memory to a few
	// hundred MiB, and stays well below the file descriptors a process
	// gets.
	DefaultMaxConnections = 4096
	// DefaultMaxConcurrentStreams bounds the calls in flight on one HTTP/2
	// connection; clients queue the calls beyond it.
	DefaultMaxConcurrentStreams = 256
	// DefaultBodyTimeout bounds the reception of one request body: a 16 MiB
	// batch needs about 4 Mbit/s to arrive in time.
	DefaultBodyTimeout = 30 * time.Second
)

// Fixed transport bounds.
const (
	// headerTimeout bounds the TLS handshake and the reception of an HTTP
	// request's headers, and the handshake of a gRPC connection.
	headerTimeout = 10 * time.Second
	// idleTimeout closes HTTP keep-alive connections left idle.
	idleTimeout = 2 * time.Minute
	// grpcEnvelope is what a gRPC message may hold besides its events'
	// bytes: the tag and length of each event in a batch (at most 6 bytes
	// each) and the request's other fields.
	grpcEnvelope = 64 << 10
	// grpcMaxHeaderListSize bounds a gRPC call's metadata; headers are not
	// flow-controlled, and gRPC's own bound is 16 MiB. A bearer token is
	// at most 16 KiB (auth.DefaultMaxTokenBytes).
	grpcMaxHeaderListSize = 64 << 10
	// grpcKeepaliveMinTime is the shortest interval at which a client may
	// ping; one pinging more often is sent GOAWAY (too_many_pings). Pings
	// are allowed without calls in flight, so that publishers keep idle
	// connections alive through NAT.
	grpcKeepaliveMinTime = 10 * time.Second
	// grpcPingAfter: the server pings a client silent this long, and
	// closes the connection if the answer takes grpcPingTimeout (a peer
	// that vanished no longer holds a connection slot).
	grpcPingAfter   = time.Minute
	grpcPingTimeout = 20 * time.Second
	// grpcMaxConnectionIdle closes a gRPC connection without calls for this
	// long, freeing its slot; clients reconnect when they next call.
	grpcMaxConnectionIdle = 15 * time.Minute
	// grpcStreamWindow and grpcConnWindow are the HTTP/2 flow-control
	// windows of gRPC calls, fixed. With gRPC's default (windows sized
	// by BDP estimation) a connection answers the first data it receives
	// after a quiet moment with a window update and a PING, and reads the
	// PING's answer: below saturation that is every message, two
	// syscalls and two wake-ups more per publish (issue 11). The estimate
	// would grow a window to 16 MiB at most; these bound it below that.
	grpcStreamWindow = 4 << 20
	grpcConnWindow   = 16 << 20
)

// TransportLimits bounds what clients can make the listeners hold.
type TransportLimits struct {
	// MaxConnections bounds the connections each listener holds open (a
	// shared port's one listener included). A connection beyond it is
	// closed at once, without affecting those open, and counted in
	// switchyard_listener_connections_refused_total: a client fails fast
	// and retries (another replica, behind a load balancer) rather than
	// waiting in a queue. Default DefaultMaxConnections.
	MaxConnections int
	// MaxConcurrentStreams bounds the calls in flight on one HTTP/2
	// connection (gRPC, and HTTP/2 on the HTTP listener). Default
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams int
	// BodyTimeout bounds the reception of an HTTP request's body, counted
	// from the end of its headers (which must arrive within 10 s): a
	// client trickling its body is cut off with 408. Default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
}

func (l *TransportLimits) setDefaults() {
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
}

func (l TransportLimits) validate() error {
	var errs []error
	if l.MaxConnections < 0 {
		errs = append(errs, errors.New("max_connections (--max-connections) must be positive"))
	}
	if l.MaxConcurrentStreams < 0 || l.MaxConcurrentStreams > 1<<20 {
		errs = append(errs, errors.New("max_concurrent_streams (--max-concurrent-streams) must be between 1 and 1048576"))
	}
	if l.BodyTimeout < 0 {
		errs = append(errs, errors.New("http_body_timeout (--http-body-timeout) must be positive"))
	}
	return errors.Join(errs...)
}

// grpcMaxMessageBytes is the largest gRPC message received: one event of
// max_event_bytes or a batch of max_batch_bytes, with its envelope. gRPC
// refuses a larger one with RESOURCE_EXHAUSTED naming this bound, before
// any of it is decoded.
func grpcMaxMessageBytes(l cloudevent.Limits) int {
	return int(max(l.MaxEventBytes, l.MaxBatchBytes)) + grpcEnvelope
}

// grpcOptions are the gRPC server's transport settings: message size,
// streams, keepalive, handshake time and, on a listener of its own, TLS.
func (s *Server) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(grpcMaxMessageBytes(s.cfg.Limits)),
		grpc.MaxConcurrentStreams(uint32(s.cfg.Transport.MaxConcurrentStreams)),
		grpc.MaxHeaderListSize(grpcMaxHeaderListSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: grpcKeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: grpcMaxConnectionIdle, Time: grpcPingAfter, Timeout: grpcPingTimeout}),
		grpc.ConnectionTimeout(headerTimeout),
		grpc.StaticStreamWindowSize(grpcStreamWindow),
		grpc.StaticConnWindowSize(grpcConnWindow),
		// Calls run on reused goroutines (more start when all are busy):
		// a goroutine per call regrew its stack for every publish.
		grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))),
	}
	if s.tls != nil && !s.shared {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls.config(alpnGRPC))))
	}
	return opts
}

// listenerMetrics count the listeners' connections.
type listenerMetrics struct {
	open    *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

func newListenerMetrics(reg prometheus.Registerer) *listenerMetrics {
	m := &listenerMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switchyard_listener_connections",
			Help: "Connections open on each listener (http, grpc, or shared)."}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_listener_connections_refused_total",
			Help: "Connections closed at once because the listener held max_connections."}, []string{"listener"}),
	}
	reg.MustRegister(m.open, m.refused)
	return m
}

// refusalWarnEvery bounds how often refusals are logged.
const refusalWarnEvery = time.Minute

// limitedListener holds at most max connections open; it accepts and
// closes at once (with a reset, leaving no TIME_WAIT behind) any beyond.
// Refusing rather than leaving connections in the kernel's accept queue
// tells a client at once, and keeps a flood from filling that queue ahead
// of the clients that come once slots free up.
type limitedListener struct {
	net.Listener
	name    string
	max     int64
	n       atomic.Int64
	open    prometheus.Gauge
	refused prometheus.Counter
	log     *slog.Logger
	warned  atomic.Int64 // unix nanoseconds of the last warning
}

func newLimitedListener(l net.Listener, name string, maxConns int, m *listenerMetrics, log *slog.Logger) *limitedListener {
	return &limitedListener{Listener: l, name: name, max: int64(maxConns),
		open: m.open.WithLabelValues(name), refused: m.refused.WithLabelValues(name), log: log}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.n.Add(1) <= l.max {
			l.open.Inc()
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.n.Add(-1)
		l.refused.Inc()
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		l.warn()
	}
}

func (l *limitedListener) release() {
	l.n.Add(-1)
	l.open.Dec()
}

func (l *limitedListener) warn() {
	now, last := time.Now().UnixNano(), l.warned.Load()
	if now-last < int64(refusalWarnEvery) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("listener at max_connections: refusing new connections", "listener", l.name, "max_connections", l.max)
}

// limitedConn gives its slot back when closed (once).
type limitedConn struct {
	net.Conn
	l    *limitedListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// bodyDeadline bounds the reception of each request body by
// Transport.BodyTimeout (http.ResponseController sets the connection's, or
// the HTTP/2 stream's, read deadline), lifting the deadline once the body
// is read: a request waiting for the store must not be cut off by a
// deadline meant for its body.
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	d := s.cfg.Transport.BodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
			r.Body = &timedBody{ReadCloser: r.Body, rc: rc, timeout: d}
		}
		next.ServeHTTP(w, r)
	})
}

// timedBody is a request body under a read deadline.
type timedBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    atomic.Bool // read to its end: deadline lifted
	expired atomic.Bool // a read failed at the deadline
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		if b.done.CompareAndSwap(false, true) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.expired.Store(true)
	}
	return n, err
}

// bodyTimedOut reports whether reading r's body failed at its deadline,
// and the deadline.
func bodyTimedOut(r *http.Request) (time.Duration, bool) {
	b, ok := r.Body.(*timedBody)
	if !ok || !b.expired.Load() {
		return 0, false
	}
	return b.timeout, true
}
