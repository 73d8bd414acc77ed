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

// maxAnswers bounds the answers packed into one InvokeStreamResponse.
const maxAnswers = 256

// InvokeStream implements FunctionService: every invocation runs in its own
// goroutine, as a unary call would, through handle, and is answered with an
// ack. One sender goroutine sends the answers, packing every answer already
// waiting into one message. When the stream ends, stalled calls are
// released, answers are no longer sent, and InvokeStream returns once every
// call and the sender have returned.
func (s *sink) InvokeStream(stream functionv1.FunctionService_InvokeStreamServer) error {
	if s.unaryOnly {
		return status.Error(codes.Unimplemented, "this sink serves unary Invoke only")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	st := &sinkStream{stream: stream, cancel: cancel, calls: make(map[uint64]chan struct{}), wake: make(chan struct{}, 1)}
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		st.sendLoop()
	}()
	var err error
	for {
		var req *functionv1.InvokeStreamRequest
		if req, err = stream.Recv(); err != nil {
			break
		}
		st.mu.Lock() // once for every call of the message
		for _, c := range req.GetCalls() {
			call := c.GetCall()
			switch kind := c.GetKind().(type) {
			case *functionv1.StreamCall_Invoke:
				st.calls[call] = nil
				st.wg.Add(1)
				go func() { // not wg.Go: its wrapper is one more allocation per call
					defer st.wg.Done()
					s.handle(ctx, kind.Invoke.GetEvent(), st, call)
					st.answer(call)
				}()
			case *functionv1.StreamCall_Cancel:
				if kind.Cancel {
					st.withdrawLocked(call)
				}
			}
		}
		st.mu.Unlock()
	}
	st.end()
	cancel()
	st.wg.Wait()
	sender.Wait()
	if st.sendErr != nil { // the sender has returned
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
	wake   chan struct{}      // a token when answers may be waiting or the stream is ending

	mu sync.Mutex
	// calls holds the running calls: nil, the channel a stalled call waits
	// on, or withdrawn once cancelled.
	calls  map[uint64]chan struct{}
	done   []uint64 // calls answered, waiting for the sender
	closed bool     // the stream is ending: no more answers

	sendErr error // written by the sender only
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

// withdrawLocked cancels a running call; a call that already returned is
// ignored. st.mu is held.
func (st *sinkStream) withdrawLocked(call uint64) {
	ch, ok := st.calls[call]
	if !ok || ch == withdrawn {
		return
	}
	if ch != nil {
		close(ch)
	}
	st.calls[call] = withdrawn
}

// answer forgets a returned call and queues its ack for the sender unless
// the stream is ending.
func (st *sinkStream) answer(call uint64) {
	st.mu.Lock()
	delete(st.calls, call)
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.done = append(st.done, call)
	// The sender waits only after finding the queue empty: the answer that
	// fills it again wakes it.
	first := len(st.done) == 1
	st.mu.Unlock()
	if first {
		st.signal()
	}
}

// signal wakes the sender if it is waiting (a token already pending will).
func (st *sinkStream) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// end stops the answers; the sender returns.
func (st *sinkStream) end() {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	st.signal()
}

// sendLoop is the stream's only sender: it waits for the first answer, takes
// every other one already waiting (up to maxAnswers) and sends them as one
// message, until the stream ends. A Send error ends the stream (gRPC has
// failed it): the calls are cancelled.
func (st *sinkStream) sendLoop() {
	var calls []uint64 // reused: the calls of one message
	for {
		var ok bool
		if calls, ok = st.next(calls[:0]); !ok {
			return
		}
		// One allocation for the answers, one for their pointers and one for
		// the message, whatever the number of answers; none is reused, as
		// gRPC may use a sent message after Send.
		vals := make([]functionv1.StreamAnswer, len(calls))
		m := &functionv1.InvokeStreamResponse{Answers: make([]*functionv1.StreamAnswer, len(calls))}
		for i, call := range calls {
			a := &vals[i]
			a.Call, a.Response = call, ackResponse
			m.Answers[i] = a
		}
		if err := st.stream.Send(m); err != nil {
			st.sendErr = err
			st.mu.Lock()
			st.closed, st.done = true, nil
			st.mu.Unlock()
			st.cancel()
			return
		}
	}
}

// next blocks until answers are waiting and appends the oldest, up to
// maxAnswers, to buf; ok is false when the stream is ending.
func (st *sinkStream) next(buf []uint64) (_ []uint64, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for len(st.done) == 0 && !st.closed {
		st.mu.Unlock()
		<-st.wake
		st.mu.Lock()
	}
	if st.closed {
		return buf, false
	}
	n := min(len(st.done), maxAnswers)
	buf = append(buf, st.done[:n]...)
	st.done = st.done[:copy(st.done, st.done[n:])]
	return buf, true
}

// startSink serves a sink on 127.0.0.1:0.
func startSink(unaryOnly bool) (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Fixed flow-control windows, as the SDK's function server has: with
	// gRPC's default BDP estimation it would ping the server after nearly
	// every attempt below saturation, a cost of that default rather than
	// of Switchyard.
	s := &sink{srv: grpc.NewServer(grpc.StaticStreamWindowSize(4<<20), grpc.StaticConnWindowSize(16<<20)), addr: l.Addr().String(), unaryOnly: unaryOnly}
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
