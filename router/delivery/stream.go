package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-io/switchyard/internal/panics"
	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// A unary gRPC call costs a new HTTP/2 stream, two header blocks, a trailer
// block and a goroutine on each side: measured here at about five times the
// CPU of one message on an open stream. So a gRPC target that serves
// FunctionService/InvokeStream gets its attempts as messages on a long-lived
// stream, and one that does not (UNIMPLEMENTED) gets unary Invoke calls,
// asked again every unsupportedFor. The attempt semantics are the same
// either way: the same request bytes, the same deadline (enforced here, and
// sent for the function to apply to its handler), the same classification
// of the answer.
//
// One stream serves every trigger aimed at the target. Its life:
//   - opened by the first attempt to find no usable stream;
//   - retired when its connection leaves READY (the function's server is
//     going away: a GracefulStop sends GOAWAY and then waits for open
//     streams to end): new attempts open a new stream, and the old one is
//     half-closed once its last call is answered, so the server can finish;
//   - ended by an error: calls left unanswered fail with UNAVAILABLE and are
//     retried by the usual policy.

// unsupportedFor is how long a target that answered UNIMPLEMENTED to
// InvokeStream gets unary calls before it is asked again.
const unsupportedFor = 5 * time.Minute

// sendQueue bounds the calls waiting for a stream's sender.
const sendQueue = 256

// packCalls and packBytes bound one InvokeStreamRequest: the sender packs
// every call already waiting into one message (it never waits for more),
// up to these limits; a larger call goes alone. Functions' gRPC servers
// accept 4 MiB messages by default.
const (
	packCalls = 64
	packBytes = 1 << 20
)

var invokeStreamDesc = &grpc.StreamDesc{StreamName: "InvokeStream", ServerStreams: true, ClientStreams: true}

var (
	// errNoStreams reports a target that does not serve InvokeStream.
	errNoStreams = errors.New("target does not serve InvokeStream")
	// errRetired reports a stream that stopped taking calls between being
	// chosen and being used: the caller picks another.
	errRetired = errors.New("InvokeStream retired")
	// errNotYet reports a target whose connection is not ready: the
	// attempt goes unary.
	errNotYet = errors.New("connection not ready for an InvokeStream")
)

// streamTarget is the stream state of one gRPC target.
type streamTarget struct {
	mu          sync.Mutex
	cur         *invokeStream
	unsupported time.Time // until when to use unary calls
}

// invokeStream is one open InvokeStream.
type invokeStream struct {
	target string
	cc     *grpc.ClientConn
	st     grpc.ClientStream
	cancel context.CancelFunc
	sendq  chan streamCall
	log    *slog.Logger
	// unimplemented records that the target does not serve InvokeStream,
	// before the calls waiting on the stream fall back to unary ones.
	unimplemented func()

	next atomic.Uint64

	mu       sync.Mutex
	pending  map[uint64]chan streamAnswer
	retired  bool  // takes no new calls; half-closed once pending is empty
	halfDone bool  // CloseSend issued
	err      error // set when the stream ended; no new calls

	done chan struct{} // closed when the stream ended
}

// streamAnswer is a call's answer, or the error that ended the stream first.
type streamAnswer struct {
	resp *functionv1.StreamAnswer
	err  error
}

// stream returns the connection's usable stream, opening one when needed,
// or errNoStreams.
func (t *Targets) stream(gc *grpcConn) (*invokeStream, error) {
	cc, target, st := gc.cc, gc.addr, &gc.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.cur; s != nil && s.usable() {
		return s, nil
	}
	if time.Now().Before(st.unsupported) {
		return nil, errNoStreams
	}
	if cc.GetState() != connectivity.Ready {
		// Opening a stream would wait for the connection without regard to
		// the attempt's deadline: this attempt goes unary, and the
		// connection is being made for the next ones.
		cc.Connect()
		return nil, errNotYet
	}
	ctx, cancel := context.WithCancel(t.base)
	cs, err := cc.NewStream(ctx, invokeStreamDesc, functionv1.FunctionService_InvokeStream_FullMethodName, invokeOpts...)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &invokeStream{
		target: target, cc: cc, st: cs, cancel: cancel, log: t.log,
		sendq:   make(chan streamCall, sendQueue),
		pending: map[uint64]chan streamAnswer{},
		done:    make(chan struct{}),
	}
	st.cur = s
	t.wg.Add(3)
	// A panic in the sender or the watcher ends the stream (its calls
	// fail and are retried, as when the function's connection drops);
	// one in the receiver ends it with its calls failed the same way.
	stop := func(any) { s.cancel() }
	go func() { defer t.wg.Done(); defer panics.Catch(t.log, "delivery.stream.send", stop); s.sendLoop() }()
	go func() { defer t.wg.Done(); defer panics.Catch(t.log, "delivery.stream.watch", stop); s.watch(ctx) }()
	s.unimplemented = func() {
		st.mu.Lock()
		st.unsupported = time.Now().Add(unsupportedFor)
		st.mu.Unlock()
		t.log.Info("gRPC target does not serve InvokeStream: attempts go as unary Invoke calls",
			"target", target, "recheck_in", unsupportedFor.String())
	}
	go func() { defer t.wg.Done(); defer panics.Catch(t.log, "delivery.stream.end", stop); s.recvLoop() }()
	return s, nil
}

// usable reports whether the stream takes new calls.
func (s *invokeStream) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && !s.retired
}

// call sends one invocation and waits for its answer. ok is false when the
// target turned out not to serve InvokeStream before answering: the attempt
// did not happen and goes as a unary call instead.
func (s *invokeStream) call(ctx context.Context, deadline time.Time, req []byte) (resp *functionv1.StreamAnswer, err error, ok bool) {
	id := s.next.Add(1)
	ch := make(chan streamAnswer, 1)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err, !errors.Is(err, errNoStreams)
	}
	if s.halfDone {
		s.mu.Unlock()
		return nil, errRetired, true
	}
	s.pending[id] = ch
	s.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case s.sendq <- streamCall{id: id, req: req}:
	case a := <-ch: // the stream ended before the request was queued
		return nil, a.err, !errors.Is(a.err, errNoStreams)
	case <-timer.C:
		s.forget(id, false)
		return nil, errDeadline, true
	case <-ctx.Done():
		s.forget(id, false)
		return nil, ctx.Err(), true
	}
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, a.err, !errors.Is(a.err, errNoStreams)
		}
		return a.resp, nil, true
	case <-timer.C:
		s.forget(id, true)
		return nil, errDeadline, true
	case <-ctx.Done():
		s.forget(id, true)
		return nil, ctx.Err(), true
	}
}

// forget drops a call nobody waits for any more. With cancel, the function
// is told to stop working on it (best effort: not when the send queue is
// full).
func (s *invokeStream) forget(id uint64, cancel bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, open := s.pending[id]; open && cancel && !s.halfDone {
		select {
		case s.sendq <- streamCall{id: id}:
		default:
		}
	}
	delete(s.pending, id)
	s.maybeHalfClose()
}

// maybeHalfClose closes a retired stream's sending side once no call is
// open. Called with s.mu held.
func (s *invokeStream) maybeHalfClose() {
	if s.retired && !s.halfDone && len(s.pending) == 0 && s.err == nil {
		s.halfDone = true
		close(s.sendq) // the sender half-closes the stream after the last message
	}
}

// streamCall is a call waiting for the sender: an invocation (req, an
// encoded InvokeRequest) or, with req nil, the withdrawal of call id.
type streamCall struct {
	id  uint64
	req []byte
}

// sendLoop writes the queued calls, those waiting together packed into one
// message (encoded once, into a buffer of the exact size);
// grpc.ClientStream.SendMsg must not be called concurrently.
func (s *invokeStream) sendLoop() {
	batch := make([]streamCall, 0, packCalls)
	for {
		var first streamCall
		open := true
		select {
		case first, open = <-s.sendq:
		case <-s.done:
			return
		}
		if !open {
			_ = s.st.CloseSend()
			return
		}
		batch = append(batch[:0], first)
		size := callSize(first)
	pack:
		for len(batch) < packCalls && size < packBytes {
			select {
			case c, ok := <-s.sendq:
				if !ok {
					open = false
					break pack
				}
				batch = append(batch, c)
				size += callSize(c)
			default:
				break pack
			}
		}
		msg := make([]byte, 0, size)
		for _, c := range batch {
			msg = appendCall(msg, c)
		}
		clear(batch) // let the requests go
		if err := s.st.SendMsg(preEncoded(msg)); err != nil {
			return // RecvMsg reports the stream's status
		}
		if !open {
			_ = s.st.CloseSend()
			return
		}
	}
}

// recvLoop hands answers to their callers until the stream ends, then fails
// the calls left open.
func (s *invokeStream) recvLoop() {
	var err error
	if panics.Run(s.log, "delivery.stream.recv", func() { err = s.receive() }) {
		s.cancel()
		err = status.Error(codes.Internal, "switchyard failed while reading the stream's answers (logged with its stack)")
	}
	s.end(err)
}

// receive hands answers to their callers until the stream ends, and
// returns the error that ended it.
func (s *invokeStream) receive() error {
	for {
		resp := &functionv1.InvokeStreamResponse{}
		if err := s.st.RecvMsg(resp); err != nil {
			return err
		}
		s.answer(resp)
	}
}

// answer hands one message's answers to their callers.
func (s *invokeStream) answer(resp *functionv1.InvokeStreamResponse) {
	s.mu.Lock()
	defer s.mu.Unlock() // deferred: end takes the lock after a panic
	for _, a := range resp.GetAnswers() {
		if ch, open := s.pending[a.GetCall()]; open {
			delete(s.pending, a.GetCall())
			ch <- streamAnswer{resp: a} // buffered: never blocks
		}
	}
	s.maybeHalfClose()
}

// end marks the stream ended by err and fails the calls left open.
func (s *invokeStream) end(err error) {
	end := err
	switch {
	case status.Code(err) == codes.Unimplemented:
		end = errNoStreams
		s.unimplemented()
	case errors.Is(err, io.EOF):
		end = status.Error(codes.Unavailable, "function ended the InvokeStream before answering")
	default:
		end = status.Error(status.Code(err), fmt.Sprintf("InvokeStream ended: %s", status.Convert(err).Message()))
	}
	s.mu.Lock()
	s.err = end
	left := s.pending
	s.pending = nil
	s.mu.Unlock()
	close(s.done)
	s.cancel()
	for _, ch := range left {
		ch <- streamAnswer{err: end}
	}
	if !errors.Is(err, io.EOF) && status.Code(err) != codes.Unimplemented && status.Code(err) != codes.Canceled {
		level := slog.LevelInfo // a function restarting between calls
		if len(left) > 0 {
			level = slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "InvokeStream ended", "target", s.target, "error", err.Error(), "calls_failed", len(left))
	}
}

// watch retires the stream when its connection leaves READY (see the top of
// this file); it returns when the stream ends. The connection's reported
// state can lag behind the transport the stream was opened on, so states
// before the first READY do not count.
func (s *invokeStream) watch(ctx context.Context) {
	ready := false
	for state := s.cc.GetState(); ; state = s.cc.GetState() {
		if state == connectivity.Ready {
			ready = true
		} else if ready || state == connectivity.Shutdown {
			break
		}
		if !s.cc.WaitForStateChange(ctx, state) {
			return // the stream ended
		}
	}
	s.mu.Lock()
	s.retired = true
	s.maybeHalfClose()
	s.mu.Unlock()
}

// closeStreams ends every open stream (Targets.Close).
func (t *Targets) closeStreams() {
	t.cancelBase()
	t.wg.Wait()
}

// Field numbers of InvokeStreamRequest and StreamCall (function.proto).
const (
	requestCalls protowire.Number = 1
	callNumber   protowire.Number = 1
	callInvoke   protowire.Number = 2
	callCancel   protowire.Number = 3
)

// callSize is the size of c in an InvokeStreamRequest.
func callSize(c streamCall) int {
	n := callBodySize(c)
	return protowire.SizeTag(requestCalls) + protowire.SizeBytes(n)
}

// callBodySize is the size of c's StreamCall.
func callBodySize(c streamCall) int {
	n := protowire.SizeTag(callNumber) + protowire.SizeVarint(c.id)
	if c.req == nil {
		return n + protowire.SizeTag(callCancel) + protowire.SizeVarint(1)
	}
	return n + protowire.SizeTag(callInvoke) + protowire.SizeBytes(len(c.req))
}

// appendCall appends c to an InvokeStreamRequest as a StreamCall (call
// number, then the invocation or cancel = true).
func appendCall(msg []byte, c streamCall) []byte {
	msg = protowire.AppendTag(msg, requestCalls, protowire.BytesType)
	msg = protowire.AppendVarint(msg, uint64(callBodySize(c)))
	msg = protowire.AppendTag(msg, callNumber, protowire.VarintType)
	msg = protowire.AppendVarint(msg, c.id)
	if c.req == nil {
		msg = protowire.AppendTag(msg, callCancel, protowire.VarintType)
		return protowire.AppendVarint(msg, 1)
	}
	msg = protowire.AppendTag(msg, callInvoke, protowire.BytesType)
	return protowire.AppendBytes(msg, c.req)
}
