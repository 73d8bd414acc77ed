package function

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// maxBatch and maxBatchBytes bound one InvokeStreamResponse: the sender packs
// every answer already waiting into one message (it never waits for more),
// up to these limits; a larger answer goes alone. The byte bound keeps
// packing from making a message too large for the client where each answer
// alone would not be.
const (
	maxBatch      = 256
	maxBatchBytes = 1 << 20
)

// InvokeStream implements functionv1.FunctionServiceServer: it runs every
// invocation received on the stream concurrently, exactly as Invoke would,
// and answers each with the call number it came with, in completion order.
// The calls of a request message are taken in order: an invocation starts its
// call, a cancel cancels the context of the call it names. One goroutine
// sends the answers: it packs every answer waiting when it is free to send
// into one response message, so answers finishing together share a message.
//
// When the stream ends (the client closes its side, the stream's context is
// done, or an answer cannot be sent), the contexts of the calls still running
// are cancelled, their answers are no longer sent (Switchyard retries
// unanswered calls), and InvokeStream returns once every handler has
// returned. Answers of calls that finished before the client closed its side
// are still sent.
func (s *service) InvokeStream(stream functionv1.FunctionService_InvokeStreamServer) error {
	ctx, cancelAll := context.WithCancel(stream.Context())
	st := &streamState{
		stream:    stream,
		cancelAll: cancelAll,
		calls:     make(map[uint64]*streamCall),
		wake:      make(chan struct{}, 1),
	}
	var sender sync.WaitGroup
	sender.Go(st.sendLoop)
	err := s.receive(ctx, st)
	// The stream is over: stop answering (but for the answers already waiting
	// when the client closed its side), withdraw the running calls and wait
	// for their handlers and the sender.
	st.end(errors.Is(err, io.EOF))
	cancelAll()
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

// streamState is the state of one InvokeStream.
type streamState struct {
	stream    functionv1.FunctionService_InvokeStreamServer
	cancelAll context.CancelFunc
	wg        sync.WaitGroup // running calls
	wake      chan struct{}  // a token when answers may be waiting or the stream is ending

	mu     sync.Mutex
	calls  map[uint64]*streamCall // running calls by number
	queue  []queuedAnswer         // answers waiting for the sender
	closed bool                   // the stream is ending: queue no more answers
	flush  bool                   // with closed: the sender still sends the queue

	sendErr error // the Send error that ended the stream; only the sender writes it
}

// streamCall is one running call; cancel withdraws it.
type streamCall struct {
	cancel context.CancelFunc
}

// queuedAnswer is an answer waiting for the sender, with its encoded size.
type queuedAnswer struct {
	answer *functionv1.StreamAnswer
	size   int
}

// receive reads request messages until the stream ends and starts a
// goroutine, owned by st.wg, for every invocation. It returns the Recv error
// (io.EOF when the client closed its side).
func (s *service) receive(ctx context.Context, st *streamState) error {
	for {
		req, err := st.stream.Recv()
		if err != nil {
			return err
		}
		for _, sc := range req.GetCalls() {
			s.start(ctx, st, sc)
		}
	}
}

// start takes one call of a request message: it starts an invocation or
// withdraws a running call.
func (s *service) start(ctx context.Context, st *streamState, sc *functionv1.StreamCall) {
	id := sc.GetCall()
	switch kind := sc.GetKind().(type) {
	case *functionv1.StreamCall_Invoke:
		var (
			cctx   context.Context
			cancel context.CancelFunc
		)
		// The stream has no per-call gRPC deadline: the request's deadline
		// is the call's.
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
			resp, rst := s.invoke(cctx, kind.Invoke)
			st.finish(id, c, streamAnswer(id, resp, rst))
		})
	case *functionv1.StreamCall_Cancel:
		if !kind.Cancel {
			return
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

// finish forgets a call that has returned, releases its context and queues
// its answer for the sender unless the stream is ending.
func (st *streamState) finish(id uint64, c *streamCall, a *functionv1.StreamAnswer) {
	c.cancel()
	size := proto.Size(a)
	st.mu.Lock()
	if st.calls[id] == c {
		delete(st.calls, id)
	}
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.queue = append(st.queue, queuedAnswer{answer: a, size: size})
	// The sender waits only after finding the queue empty: the answer that
	// fills it again wakes it.
	first := len(st.queue) == 1
	st.mu.Unlock()
	if first {
		st.signal()
	}
}

// signal wakes the sender if it is waiting (a token already pending will).
func (st *streamState) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// end stops the queueing of answers; with flush, the answers already queued
// are still sent. The sender returns once it has nothing more to send.
func (st *streamState) end(flush bool) {
	st.mu.Lock()
	if !st.closed {
		st.closed, st.flush = true, flush
	}
	st.mu.Unlock()
	st.signal()
}

// sendLoop is the stream's only sender: it waits for the first answer
// waiting, packs every other one already waiting with it, and sends them as
// one message, until the stream ends. A Send error ends the stream: gRPC has
// already failed it, and the receive loop and the running calls are
// cancelled.
func (st *streamState) sendLoop() {
	for {
		answers := st.next()
		if answers == nil {
			return
		}
		// A new message each time: gRPC may use a sent message after Send.
		if err := st.stream.Send(&functionv1.InvokeStreamResponse{Answers: answers}); err != nil {
			st.sendErr = err
			st.mu.Lock()
			st.closed, st.flush = true, false
			clear(st.queue)
			st.queue = st.queue[:0]
			st.mu.Unlock()
			st.cancelAll()
			return
		}
	}
}

// next blocks until answers are waiting and returns the next message's
// answers: the oldest waiting, up to maxBatch and maxBatchBytes (at least
// one). It returns nil when nothing more is to be sent.
func (st *streamState) next() []*functionv1.StreamAnswer {
	st.mu.Lock()
	defer st.mu.Unlock()
	for len(st.queue) == 0 || (st.closed && !st.flush) {
		if st.closed {
			return nil
		}
		st.mu.Unlock()
		<-st.wake
		st.mu.Lock()
	}
	n, size := 0, 0
	for n < len(st.queue) && n < maxBatch {
		if n > 0 && size+st.queue[n].size > maxBatchBytes {
			break
		}
		size += st.queue[n].size
		n++
	}
	answers := make([]*functionv1.StreamAnswer, n)
	for i := range answers {
		answers[i] = st.queue[i].answer
	}
	rest := copy(st.queue, st.queue[n:])
	clear(st.queue[rest:]) // drop the references of the answers taken
	st.queue = st.queue[:rest]
	return answers
}

// streamAnswer is the InvokeStream answer to call id equivalent to the unary
// answer (resp, st): the response when st is nil, else the status's code,
// message and RetryInfo delay.
func streamAnswer(id uint64, resp *functionv1.InvokeResponse, st *status.Status) *functionv1.StreamAnswer {
	out := &functionv1.StreamAnswer{Call: id}
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
