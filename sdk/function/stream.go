package function

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// InvokeStream implements functionv1.FunctionServiceServer: it runs every
// invocation received on the stream concurrently, exactly as Invoke would,
// and answers each with the call number it came with, in completion order.
//
// A cancel request cancels the context of the call it names. When the stream
// ends (the client closes its side, the stream's context is done, or an
// answer cannot be sent), the contexts of the calls still running are
// cancelled, their answers are no longer sent (Switchyard retries unanswered
// calls), and InvokeStream returns once every handler has returned.
func (s *service) InvokeStream(stream functionv1.FunctionService_InvokeStreamServer) error {
	ctx, cancelAll := context.WithCancel(stream.Context())
	st := &streamState{stream: stream, cancelAll: cancelAll, calls: make(map[uint64]*streamCall)}
	err := s.receive(ctx, st)
	// The stream is over: stop answering, withdraw the running calls and wait
	// for their handlers.
	st.closed.Store(true)
	cancelAll()
	st.wg.Wait()
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if st.sendErr != nil {
		return st.sendErr
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// streamState is the state of one InvokeStream.
type streamState struct {
	stream    functionv1.FunctionService_InvokeStreamServer
	cancelAll context.CancelFunc
	wg        sync.WaitGroup // running calls
	closed    atomic.Bool    // the stream is ending: send no more answers

	mu    sync.Mutex
	calls map[uint64]*streamCall // running calls by number

	sendMu  sync.Mutex // serializes Send (not safe for concurrent use)
	sendErr error      // the first Send error; it ends the stream
}

// streamCall is one running call; cancel withdraws it.
type streamCall struct {
	cancel context.CancelFunc
}

// receive reads requests until the stream ends and starts a goroutine, owned
// by st.wg, for every invocation. It returns the Recv error (io.EOF when the
// client closed its side).
func (s *service) receive(ctx context.Context, st *streamState) error {
	for {
		req, err := st.stream.Recv()
		if err != nil {
			return err
		}
		id := req.GetCall()
		switch kind := req.GetKind().(type) {
		case *functionv1.InvokeStreamRequest_Invoke:
			var (
				cctx   context.Context
				cancel context.CancelFunc
			)
			// The stream has no per-call gRPC deadline: the request's
			// deadline is the call's.
			if d := kind.Invoke.GetDeadline(); d != nil {
				cctx, cancel = context.WithDeadline(ctx, d.AsTime())
			} else {
				cctx, cancel = context.WithCancel(ctx)
			}
			c := &streamCall{cancel: cancel}
			st.mu.Lock()
			// Call numbers are unique on a stream; should a client reuse a
			// running one, the newest call is the one a cancel withdraws.
			st.calls[id] = c
			st.mu.Unlock()
			st.wg.Go(func() {
				defer st.finish(id, c)
				resp, rst := s.invoke(cctx, kind.Invoke)
				st.send(streamResponse(id, resp, rst))
			})
		case *functionv1.InvokeStreamRequest_Cancel:
			if !kind.Cancel {
				continue
			}
			st.mu.Lock()
			if c, ok := st.calls[id]; ok {
				c.cancel()
			}
			st.mu.Unlock()
		default:
			// A kind this version does not know: nothing to do.
		}
	}
}

// finish forgets a call that has returned and releases its context.
func (st *streamState) finish(id uint64, c *streamCall) {
	c.cancel()
	st.mu.Lock()
	if st.calls[id] == c {
		delete(st.calls, id)
	}
	st.mu.Unlock()
}

// send answers one call unless the stream is ending. A Send error ends the
// stream: gRPC has already failed it, and the receive loop and the running
// calls are cancelled.
func (st *streamState) send(m *functionv1.InvokeStreamResponse) {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if st.sendErr != nil || st.closed.Load() {
		return
	}
	if err := st.stream.Send(m); err != nil {
		st.sendErr = err
		st.cancelAll()
	}
}

// streamResponse is the InvokeStream answer to call id equivalent to the
// unary answer (resp, st): the response when st is nil, else the status's
// code, message and RetryInfo delay.
func streamResponse(id uint64, resp *functionv1.InvokeResponse, st *status.Status) *functionv1.InvokeStreamResponse {
	out := &functionv1.InvokeStreamResponse{Call: id}
	if st == nil {
		out.Response = resp
		return out
	}
	out.Code = int32(st.Code())
	out.Message = st.Message()
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			out.RetryDelay = ri.GetRetryDelay()
			break
		}
	}
	return out
}
