package bench

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// SentExtension is the event extension carrying the scheduled send time of
// an event in unix nanoseconds (a decimal string: CloudEvents integers are
// 32-bit).
const SentExtension = "sentns"

// sink is a minimal function endpoint: it counts calls, records the latency
// from the sentns extension when a recorder is set, and acknowledges. With a
// gate it blocks every call until the gate closes (a stalled function).
type sink struct {
	functionv1.UnimplementedFunctionServiceServer
	calls   atomic.Int64
	blocked atomic.Int64
	rec     atomic.Pointer[recorder]
	gate    atomic.Pointer[chan struct{}]
	probe   atomic.Pointer[probe]

	srv  *grpc.Server
	addr string
}

// recorder is where a sink records latencies: only events scheduled at or
// after since (unix ns) are recorded, so the warm-up is left out.
type recorder struct {
	since int64
	hist  Histogram
}

// probe is an event id the sink is waiting for.
type probe struct {
	id   string
	done chan struct{}
	once sync.Once
}

var ackResponse = &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_ACK}

// Invoke implements FunctionService.
func (s *sink) Invoke(ctx context.Context, req *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	if g := s.gate.Load(); g != nil {
		s.blocked.Add(1)
		select {
		case <-*g:
		case <-ctx.Done():
		}
		s.blocked.Add(-1)
	}
	s.calls.Add(1)
	if p := s.probe.Load(); p != nil && req.GetEvent().GetId() == p.id {
		p.once.Do(func() { close(p.done) })
	}
	if r := s.rec.Load(); r != nil {
		if v := req.GetEvent().GetAttributes()[SentExtension].GetCeString(); v != "" {
			if sent, err := strconv.ParseInt(v, 10, 64); err == nil && sent >= r.since {
				r.hist.Record(time.Duration(time.Now().UnixNano() - sent))
			}
		}
	}
	return ackResponse, nil
}

// startSink serves a sink on 127.0.0.1:0.
func startSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{srv: grpc.NewServer(), addr: l.Addr().String()}
	functionv1.RegisterFunctionServiceServer(s.srv, s)
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// stall makes every call block until release is called.
func (s *sink) stall() (release func()) {
	ch := make(chan struct{})
	s.gate.Store(&ch)
	return func() {
		if s.gate.CompareAndSwap(&ch, nil) {
			close(ch)
		}
	}
}

// record starts recording latencies of events scheduled at or after since.
func (s *sink) record(since time.Time) *recorder {
	r := &recorder{since: since.UnixNano()}
	s.rec.Store(r)
	return r
}

func (s *sink) stopRecording() { s.rec.Store(nil) }

func (s *sink) stop() { s.srv.Stop() }

// quiesce waits until the sink has had no call for quiet, at most limit.
func (s *sink) quiesce(ctx context.Context, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last := s.calls.Load()
	lastChange := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(quiet / 4)
		if n := s.calls.Load(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
	}
}
