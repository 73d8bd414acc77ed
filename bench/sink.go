package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	// unaryOnly makes the sink answer InvokeStream with UNIMPLEMENTED, as a
	// function implementing only Invoke does: Switchyard calls it unary.
	unaryOnly bool
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
	s.handle(ctx, req.GetEvent(), nil, 0)
	return ackResponse, nil
}

// handle is the work of one call, unary or streamed: on a stalled sink it
// waits until the gate opens, ctx is done or (st non-nil) the call is
// withdrawn on its stream; then it counts the call, signals the probe and
// records the latency.
func (s *sink) handle(ctx context.Context, ev *pb.CloudEvent, st *sinkStream, call uint64) {
	if g := s.gate.Load(); g != nil {
		s.blocked.Add(1)
		select {
		case <-*g:
		case <-ctx.Done():
		case <-st.withdrawal(call):
		}
		s.blocked.Add(-1)
	}
	s.calls.Add(1)
	if p := s.probe.Load(); p != nil && ev.GetId() == p.id {
		p.once.Do(func() { close(p.done) })
	}
	if r := s.rec.Load(); r != nil {
		if v := ev.GetAttributes()[SentExtension].GetCeString(); v != "" {
			if sent, err := strconv.ParseInt(v, 10, 64); err == nil && sent >= r.since {
				r.hist.Record(time.Duration(time.Now().UnixNano() - sent))
			}
		}
	}
}

// InvokeStream implements FunctionService: every invocation runs in its own
// goroutine, as a unary call would, through handle, and is answered with an
// ack. When the stream ends, stalled calls are released, answers are no
// longer sent, and InvokeStream returns once every call has returned.
func (s *sink) InvokeStream(stream functionv1.FunctionService_InvokeStreamServer) error {
	if s.unaryOnly {
		return status.Error(codes.Unimplemented, "this sink serves unary Invoke only")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	st := &sinkStream{stream: stream, cancel: cancel, calls: make(map[uint64]chan struct{})}
	var err error
	for {
		var req *functionv1.InvokeStreamRequest
		if req, err = stream.Recv(); err != nil {
			break
		}
		call := req.GetCall()
		switch kind := req.GetKind().(type) {
		case *functionv1.InvokeStreamRequest_Invoke:
			st.mu.Lock()
			st.calls[call] = nil
			st.mu.Unlock()
			st.wg.Add(1)
			go func() { // not wg.Go: its wrapper is one more allocation per call
				defer st.wg.Done()
				s.handle(ctx, kind.Invoke.GetEvent(), st, call)
				st.mu.Lock()
				delete(st.calls, call)
				st.mu.Unlock()
				st.send(&functionv1.InvokeStreamResponse{Call: call, Response: ackResponse})
			}()
		case *functionv1.InvokeStreamRequest_Cancel:
			if kind.Cancel {
				st.withdraw(call)
			}
		}
	}
	st.closed.Store(true)
	cancel()
	st.wg.Wait()
	if st.sendErr != nil { // every sender has returned
		return st.sendErr
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// sinkStream is the state of one InvokeStream on a sink.
type sinkStream struct {
	stream functionv1.FunctionService_InvokeStreamServer
	cancel context.CancelFunc // ends the stream's calls
	wg     sync.WaitGroup     // running calls
	closed atomic.Bool        // the stream is ending: no more answers

	mu sync.Mutex
	// calls holds the running calls: nil, the channel a stalled call waits
	// on, or withdrawn once cancelled.
	calls map[uint64]chan struct{}

	sendMu  sync.Mutex // Send is not safe for concurrent use
	sendErr error
}

// withdrawn is the closed channel marking a withdrawn call.
var withdrawn = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// withdrawal returns the channel closed when the running call is withdrawn
// (nil, never ready, for a unary call). Only stalled calls ask for it, so the
// channel is made only then.
func (st *sinkStream) withdrawal(call uint64) <-chan struct{} {
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ch, ok := st.calls[call]
	if ok && ch == nil {
		ch = make(chan struct{})
		st.calls[call] = ch
	}
	return ch
}

// withdraw cancels a running call; a call that already returned is ignored.
func (st *sinkStream) withdraw(call uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ch, ok := st.calls[call]
	if !ok || ch == withdrawn {
		return
	}
	if ch != nil {
		close(ch)
	}
	st.calls[call] = withdrawn
}

// send answers a call unless the stream is ending. A Send error ends the
// stream (gRPC has failed it): the calls are cancelled.
func (st *sinkStream) send(m *functionv1.InvokeStreamResponse) {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if st.sendErr != nil || st.closed.Load() {
		return
	}
	if err := st.stream.Send(m); err != nil {
		st.sendErr = err
		st.cancel()
	}
}

// startSink serves a sink on 127.0.0.1:0.
func startSink(unaryOnly bool) (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{srv: grpc.NewServer(), addr: l.Addr().String(), unaryOnly: unaryOnly}
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
