package function

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

const waitLong = 10 * time.Second

// observedService reports when the wrapped service's InvokeStream returns.
type observedService struct {
	functionv1.FunctionServiceServer
	returned chan error
}

func (o *observedService) InvokeStream(s functionv1.FunctionService_InvokeStreamServer) error {
	err := o.FunctionServiceServer.InvokeStream(s)
	o.returned <- err
	return err
}

// streamConn is one InvokeStream opened on a function server running on a
// loopback port for one test.
type streamConn struct {
	stream   functionv1.FunctionService_InvokeStreamClient
	cancel   context.CancelFunc // cancels the stream's context
	returned chan error         // receives the server's InvokeStream result

	pending []*functionv1.StreamAnswer // received, not yet returned by recv
	msgs    int                        // response messages received
}

// openStream serves NewService(h) on 127.0.0.1:0 with a plain grpc.Server
// and opens an InvokeStream on it with a real client. Everything is stopped
// at the end of the test.
func openStream(t *testing.T, h Handler, opts ...grpc.ServerOption) *streamConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(opts...)
	obs := &observedService{FunctionServiceServer: NewService(h), returned: make(chan error, 1)}
	functionv1.RegisterFunctionServiceServer(srv, obs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	stream, err := functionv1.NewFunctionServiceClient(conn).InvokeStream(ctx)
	require.NoError(t, err)
	return &streamConn{stream: stream, cancel: cancel, returned: obs.returned}
}

// invokeOf is the StreamCall starting call with req.
func invokeOf(call uint64, req *functionv1.InvokeRequest) *functionv1.StreamCall {
	return &functionv1.StreamCall{Call: call, Kind: &functionv1.StreamCall_Invoke{Invoke: req}}
}

// cancelOf is the StreamCall withdrawing call.
func cancelOf(call uint64) *functionv1.StreamCall {
	return &functionv1.StreamCall{Call: call, Kind: &functionv1.StreamCall_Cancel{Cancel: true}}
}

// send sends one request message carrying calls.
func (c *streamConn) send(t *testing.T, calls ...*functionv1.StreamCall) {
	t.Helper()
	require.NoError(t, c.stream.Send(&functionv1.InvokeStreamRequest{Calls: calls}))
}

func (c *streamConn) invoke(t *testing.T, call uint64, req *functionv1.InvokeRequest) {
	t.Helper()
	c.send(t, invokeOf(call, req))
}

func (c *streamConn) cancelCall(t *testing.T, call uint64) {
	t.Helper()
	c.send(t, cancelOf(call))
}

// recvMsg receives one response message, failing the test after waitLong.
// Every message answers at least one call.
func (c *streamConn) recvMsg(t *testing.T) *functionv1.InvokeStreamResponse {
	t.Helper()
	type result struct {
		m   *functionv1.InvokeStreamResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := c.stream.Recv()
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		require.NotEmpty(t, r.m.GetAnswers(), "a response message without answers")
		c.msgs++
		return r.m
	case <-time.After(waitLong):
		c.cancel() // unblocks the Recv goroutine
		t.Fatal("timed out waiting for an answer")
		return nil
	}
}

// recv returns the next answer, from the message last received or a new
// one, failing the test after waitLong.
func (c *streamConn) recv(t *testing.T) *functionv1.StreamAnswer {
	t.Helper()
	if len(c.pending) == 0 {
		c.pending = c.recvMsg(t).GetAnswers()
	}
	a := c.pending[0]
	c.pending = c.pending[1:]
	return a
}

// serverReturned waits for the server's InvokeStream to return.
func (c *streamConn) serverReturned(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.returned:
		return err
	case <-time.After(waitLong):
		t.Fatal("InvokeStream did not return")
		return nil
	}
}

// ctxRecorder records, per event id, the handlers that started and the error
// of their context once it was done.
type ctxRecorder struct {
	mu      sync.Mutex
	started map[string]bool
	errs    map[string]error
}

func newCtxRecorder() *ctxRecorder {
	return &ctxRecorder{started: map[string]bool{}, errs: map[string]error{}}
}

// handler blocks until its context is done and records ctx.Err().
func (r *ctxRecorder) handler(ctx context.Context, ev event.Event) (Result, error) {
	r.mu.Lock()
	r.started[ev.ID()] = true
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.errs[ev.ID()] = ctx.Err()
	r.mu.Unlock()
	return Result{}, ctx.Err()
}

func (r *ctxRecorder) isStarted(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started[id]
}

func (r *ctxRecorder) err(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[id]
}

func TestStreamAckByteExact(t *testing.T) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	in := &pb.CloudEvent{
		Id: "order-1", Source: "/orders", SpecVersion: "1.0", Type: "com.example.order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/octet-stream"}},
			"subject":         {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "orders/1"}},
			"strext":          {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "héllo"}},
			"intext":          {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: -7}},
			"bytesext":        {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte{0, 0xff}}},
		},
		Data: &pb.CloudEvent_BinaryData{BinaryData: allBytes},
	}
	deadline := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	var (
		mu     sync.Mutex
		got    event.Event
		info   Info
		infoOK bool
	)
	reply := newEvent("reply-1", "application/json", []byte("{ \"ok\" :\ttrue }\n"))
	c := openStream(t, func(ctx context.Context, ev event.Event) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		got = ev
		info, infoOK = FromContext(ctx)
		return Reply(reply), nil
	})
	c.invoke(t, 42, &functionv1.InvokeRequest{
		Event: in, Attempt: 3, Trigger: "billing",
		Deadline: timestamppb.New(deadline), IdempotencyKey: "/orders order-1", Round: 1,
	})
	ans := c.recv(t)

	require.Equal(t, uint64(42), ans.GetCall())
	require.Zero(t, ans.GetCode())
	require.Empty(t, ans.GetMessage())
	require.Nil(t, ans.GetRetryDelay())
	require.Equal(t, functionv1.Outcome_OUTCOME_ACK, ans.GetResponse().GetOutcome())
	require.Len(t, ans.GetResponse().GetReplies(), 1)
	require.Equal(t, "reply-1", ans.GetResponse().GetReplies()[0].GetId())
	require.Equal(t, reply.Data(), ans.GetResponse().GetReplies()[0].GetBinaryData())

	mu.Lock()
	defer mu.Unlock()
	require.True(t, bytes.Equal(allBytes, got.Data()), "data = %x", got.Data())
	require.Equal(t, "order-1", got.ID())
	require.Equal(t, "/orders", got.Source())
	require.Equal(t, "com.example.order.created", got.Type())
	require.Equal(t, "application/octet-stream", got.DataContentType())
	require.Equal(t, "orders/1", got.Subject())
	require.Equal(t, "héllo", got.Extensions()["strext"])
	require.Equal(t, int32(-7), got.Extensions()["intext"])
	require.Equal(t, []byte{0, 0xff}, got.Extensions()["bytesext"])
	require.True(t, infoOK, "FromContext reported !ok inside the handler")
	require.Equal(t, 3, info.Attempt)
	require.Equal(t, "billing", info.Trigger)
	require.Equal(t, "/orders order-1", info.IdempotencyKey)
	require.Equal(t, 1, info.Round)
	require.True(t, info.Deadline.Equal(deadline), "Info.Deadline = %v, want %v", info.Deadline, deadline)
}

func TestStreamOutcomes(t *testing.T) {
	withRetryInfo := func(code codes.Code, msg string, d time.Duration) error {
		st, err := status.New(code, msg).WithDetails(
			&errdetails.ErrorInfo{Reason: "BUSY", Domain: "example.com"},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(d)},
		)
		if err != nil {
			panic(err)
		}
		return st.Err()
	}
	ack := func(context.Context, event.Event) (Result, error) { return Result{}, nil }
	tests := []struct {
		name       string
		handler    Handler
		req        *functionv1.InvokeRequest // default: pbEvent("e1"), attempt 1
		code       codes.Code
		message    string        // substring of the message of a failed call
		retryDelay time.Duration // of a failed call
		outcome    functionv1.Outcome
		retryAfter time.Duration
		reason     string // substring of the reason
	}{
		{name: "ack", handler: ack, outcome: functionv1.Outcome_OUTCOME_ACK},
		{
			name: "retry after",
			handler: func(context.Context, event.Event) (Result, error) {
				return Result{}, fmt.Errorf("charging: %w", RetryAfter(1500*time.Millisecond, errors.New("rate limited")))
			},
			outcome: functionv1.Outcome_OUTCOME_RETRY, retryAfter: 1500 * time.Millisecond, reason: "rate limited",
		},
		{
			name: "dead",
			handler: func(context.Context, event.Event) (Result, error) {
				return Result{}, Dead(errors.New("malformed payload"))
			},
			outcome: functionv1.Outcome_OUTCOME_DEAD, reason: "malformed payload",
		},
		{
			name: "plain error",
			handler: func(context.Context, event.Event) (Result, error) {
				return Result{}, errors.New("database down")
			},
			outcome: functionv1.Outcome_OUTCOME_RETRY, reason: "database down",
		},
		{
			name: "unavailable with retry info",
			handler: func(context.Context, event.Event) (Result, error) {
				return Result{}, fmt.Errorf("wrapped: %w", withRetryInfo(codes.Unavailable, "overloaded", 2500*time.Millisecond))
			},
			code: codes.Unavailable, message: "overloaded", retryDelay: 2500 * time.Millisecond,
		},
		{
			name: "status without retry info",
			handler: func(context.Context, event.Event) (Result, error) {
				return Result{}, status.Error(codes.FailedPrecondition, "no such account")
			},
			code: codes.FailedPrecondition, message: "no such account",
		},
		{
			name: "dead wins over a status inside it",
			handler: func(context.Context, event.Event) (Result, error) {
				return Result{}, Dead(status.Error(codes.Unavailable, "x"))
			},
			outcome: functionv1.Outcome_OUTCOME_DEAD, reason: "x",
		},
		{
			name:    "panic",
			handler: func(context.Context, event.Event) (Result, error) { panic("boom") },
			code:    codes.Internal, message: "handler panicked: boom",
		},
		{
			name: "no event", handler: ack, req: &functionv1.InvokeRequest{Attempt: 1},
			code: codes.InvalidArgument, message: "no event",
		},
		{
			name: "undecodable event", handler: ack,
			req: &functionv1.InvokeRequest{Event: &pb.CloudEvent{
				Id: "1", Source: "s", SpecVersion: "1.0", Type: "t",
				Attributes: map[string]*pb.CloudEventAttributeValue{"time": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "yesterday"}}},
			}},
			code: codes.InvalidArgument, message: "cannot decode event",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openStream(t, tt.handler)
			req := tt.req
			if req == nil {
				req = &functionv1.InvokeRequest{Event: pbEvent("e1"), Attempt: 1, Trigger: "t"}
			}
			c.invoke(t, 7, req)
			ans := c.recv(t)
			require.Equal(t, uint64(7), ans.GetCall())
			require.Equal(t, tt.code, codes.Code(ans.GetCode()), "message %q", ans.GetMessage())
			if tt.code != codes.OK {
				require.Nil(t, ans.GetResponse())
				require.Contains(t, ans.GetMessage(), tt.message)
				if tt.retryDelay > 0 {
					require.NotNil(t, ans.GetRetryDelay())
					require.Equal(t, tt.retryDelay, ans.GetRetryDelay().AsDuration())
				} else {
					require.Nil(t, ans.GetRetryDelay())
				}
			} else {
				require.Empty(t, ans.GetMessage())
				require.Nil(t, ans.GetRetryDelay())
				resp := ans.GetResponse()
				require.NotNil(t, resp)
				require.Equal(t, tt.outcome, resp.GetOutcome())
				require.Contains(t, resp.GetReason(), tt.reason)
				if tt.retryAfter > 0 {
					require.Equal(t, tt.retryAfter, resp.GetRetryAfter().AsDuration())
				} else {
					require.Nil(t, resp.GetRetryAfter())
				}
			}
			// The stream survives every outcome, a panic included.
			c.invoke(t, 8, &functionv1.InvokeRequest{})
			ans = c.recv(t)
			require.Equal(t, uint64(8), ans.GetCall())
			require.Equal(t, codes.InvalidArgument, codes.Code(ans.GetCode()))
		})
	}
}

func TestStreamConcurrentOutOfOrder(t *testing.T) {
	const n = 40
	callOf := func(i int) uint64 { return 1000 + uint64(i)*7 }
	var (
		mu      sync.Mutex
		release = map[string]chan struct{}{}
		running atomic.Int64
	)
	for i := range n {
		release[fmt.Sprintf("e%d", i)] = make(chan struct{})
	}
	c := openStream(t, func(_ context.Context, ev event.Event) (Result, error) {
		mu.Lock()
		ch := release[ev.ID()]
		mu.Unlock()
		running.Add(1)
		<-ch
		return Reply(newEvent("reply-"+ev.ID(), "text/plain", ev.Data())), nil
	})
	for i := range n {
		c.invoke(t, callOf(i), &functionv1.InvokeRequest{Event: pbEvent(fmt.Sprintf("e%d", i)), Attempt: 1})
	}
	// Every call runs at once.
	require.Eventually(t, func() bool { return running.Load() == n }, waitLong, 5*time.Millisecond)
	// Finishing them in reverse order answers them in reverse order, each with
	// its own call number.
	for i := n - 1; i >= 0; i-- {
		id := fmt.Sprintf("e%d", i)
		mu.Lock()
		close(release[id])
		mu.Unlock()
		ans := c.recv(t)
		require.Equal(t, callOf(i), ans.GetCall())
		require.Zero(t, ans.GetCode())
		require.Equal(t, functionv1.Outcome_OUTCOME_ACK, ans.GetResponse().GetOutcome())
		require.Len(t, ans.GetResponse().GetReplies(), 1)
		require.Equal(t, "reply-"+id, ans.GetResponse().GetReplies()[0].GetId())
	}

	// Many calls finishing together: every one answered exactly once.
	const m = 200
	c2 := openStream(t, func(_ context.Context, ev event.Event) (Result, error) {
		return Reply(newEvent("reply-"+ev.ID(), "", nil)), nil
	})
	for i := range m {
		c2.invoke(t, uint64(i), &functionv1.InvokeRequest{Event: pbEvent(fmt.Sprintf("x%d", i)), Attempt: 1})
	}
	seen := map[uint64]bool{}
	for range m {
		ans := c2.recv(t)
		require.False(t, seen[ans.GetCall()], "call %d answered twice", ans.GetCall())
		seen[ans.GetCall()] = true
		require.Equal(t, fmt.Sprintf("reply-x%d", ans.GetCall()), ans.GetResponse().GetReplies()[0].GetId())
	}
}

func TestStreamCancelCall(t *testing.T) {
	r := newCtxRecorder()
	c := openStream(t, r.handler)
	c.invoke(t, 1, &functionv1.InvokeRequest{Event: pbEvent("a"), Attempt: 1})
	c.invoke(t, 2, &functionv1.InvokeRequest{Event: pbEvent("b"), Attempt: 1})
	require.Eventually(t, func() bool { return r.isStarted("a") && r.isStarted("b") }, waitLong, 5*time.Millisecond)

	c.cancelCall(t, 99) // unknown call: ignored
	c.cancelCall(t, 1)
	require.Eventually(t, func() bool { return r.err("a") != nil }, waitLong, 5*time.Millisecond)
	require.ErrorIs(t, r.err("a"), context.Canceled)
	require.NoError(t, r.err("b"), "cancelling call 1 cancelled call 2")

	// The stream still serves: a new call is answered.
	c.invoke(t, 3, &functionv1.InvokeRequest{})
	for {
		ans := c.recv(t)
		if ans.GetCall() == 1 {
			continue // answering a cancelled call is allowed
		}
		require.Equal(t, uint64(3), ans.GetCall())
		require.Equal(t, codes.InvalidArgument, codes.Code(ans.GetCode()))
		break
	}
	require.NoError(t, r.err("b"))
}

func TestStreamDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // from now; 0: no deadline field
		block    bool          // the handler waits for its context to end
	}{
		{name: "far deadline", deadline: time.Hour},
		{name: "no deadline"},
		{name: "deadline passes", deadline: 50 * time.Millisecond, block: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu          sync.Mutex
				ctxDeadline time.Time
				hasDeadline bool
				info        Info
				ctxErr      error
			)
			c := openStream(t, func(ctx context.Context, ev event.Event) (Result, error) {
				mu.Lock()
				ctxDeadline, hasDeadline = ctx.Deadline()
				info, _ = FromContext(ctx)
				mu.Unlock()
				if tt.block {
					<-ctx.Done()
				}
				mu.Lock()
				ctxErr = ctx.Err()
				mu.Unlock()
				return Result{}, ctx.Err()
			})
			req := &functionv1.InvokeRequest{Event: pbEvent("e1"), Attempt: 1}
			var want time.Time
			if tt.deadline > 0 {
				want = time.Now().Add(tt.deadline).Truncate(time.Microsecond)
				req.Deadline = timestamppb.New(want)
			}
			c.invoke(t, 5, req)
			ans := c.recv(t)
			require.Equal(t, uint64(5), ans.GetCall())

			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tt.deadline > 0, hasDeadline)
			require.True(t, ctxDeadline.Equal(want), "context deadline %v, want %v", ctxDeadline, want)
			require.True(t, info.Deadline.Equal(want), "Info.Deadline %v, want %v", info.Deadline, want)
			if tt.block {
				require.ErrorIs(t, ctxErr, context.DeadlineExceeded)
				require.Equal(t, functionv1.Outcome_OUTCOME_RETRY, ans.GetResponse().GetOutcome())
				require.Contains(t, ans.GetResponse().GetReason(), "deadline exceeded")
			} else {
				require.NoError(t, ctxErr)
				require.Equal(t, functionv1.Outcome_OUTCOME_ACK, ans.GetResponse().GetOutcome())
			}
		})
	}
}

func TestStreamEnd(t *testing.T) {
	tests := []struct {
		name    string
		end     func(t *testing.T, c *streamConn)
		wantErr bool // InvokeStream returns an error (the stream was cancelled)
	}{
		{
			name: "client closes its side",
			end:  func(t *testing.T, c *streamConn) { require.NoError(t, c.stream.CloseSend()) },
		},
		{
			name:    "client cancels the stream",
			end:     func(t *testing.T, c *streamConn) { c.cancel() },
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCtxRecorder()
			c := openStream(t, r.handler)
			c.invoke(t, 1, &functionv1.InvokeRequest{Event: pbEvent("a"), Attempt: 1})
			c.invoke(t, 2, &functionv1.InvokeRequest{Event: pbEvent("b"), Attempt: 1})
			require.Eventually(t, func() bool { return r.isStarted("a") && r.isStarted("b") }, waitLong, 5*time.Millisecond)

			tt.end(t, c)
			err := c.serverReturned(t)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			// InvokeStream returned after the handlers: their contexts were
			// cancelled and they have finished.
			require.ErrorIs(t, r.err("a"), context.Canceled)
			require.ErrorIs(t, r.err("b"), context.Canceled)
			if !tt.wantErr {
				// The server ended the stream cleanly.
				_, err := c.stream.Recv()
				require.ErrorIs(t, err, io.EOF)
			}
		})
	}
}

func TestStreamSendErrorEndsStream(t *testing.T) {
	r := newCtxRecorder()
	big := make([]byte, 4096)
	c := openStream(t, func(ctx context.Context, ev event.Event) (Result, error) {
		if ev.ID() == "big" {
			return Reply(newEvent("big-reply", "application/octet-stream", big)), nil
		}
		return r.handler(ctx, ev)
	}, grpc.MaxSendMsgSize(1024))
	c.invoke(t, 1, &functionv1.InvokeRequest{Event: pbEvent("slow"), Attempt: 1})
	require.Eventually(t, func() bool { return r.isStarted("slow") }, waitLong, 5*time.Millisecond)
	c.invoke(t, 2, &functionv1.InvokeRequest{Event: pbEvent("big"), Attempt: 1})

	err := c.serverReturned(t)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "InvokeStream = %v", err)
	require.ErrorIs(t, r.err("slow"), context.Canceled)
	_, err = c.stream.Recv()
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "client Recv = %v", err)
	require.True(t, strings.Contains(status.Convert(err).Message(), "larger than max"), "client Recv = %v", err)
}

// fakeStream is an in-memory InvokeStream server side whose Send is not safe
// for concurrent use, like gRPC's: the race detector flags Sends that are not
// serialized, and the goroutines that called Send are recorded.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	reqs chan *functionv1.InvokeStreamRequest // closed: the client closed its side
	hold chan struct{}                        // non-nil: the first Send waits until it is closed
	want int                                  // answers expected
	// ready is closed once want answers were sent.
	ready chan struct{}

	// Written without a lock on purpose:
	sent    []*functionv1.InvokeStreamResponse
	answers int             // in sent
	senders map[string]bool // the goroutines that called Send, by id
}

func newFakeStream(t *testing.T, want int) *fakeStream {
	return &fakeStream{
		ctx: callCtx(t), reqs: make(chan *functionv1.InvokeStreamRequest, want),
		want: want, ready: make(chan struct{}), senders: map[string]bool{},
	}
}

// goroutineID is the id of the calling goroutine, from its stack trace
// ("goroutine 42 [running]:…").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Fields(string(buf))[1]
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*functionv1.InvokeStreamRequest, error) {
	if r, ok := <-f.reqs; ok {
		return r, nil
	}
	return nil, io.EOF
}

func (f *fakeStream) Send(m *functionv1.InvokeStreamResponse) error {
	f.senders[goroutineID()] = true
	if f.hold != nil && len(f.sent) == 0 {
		select {
		case <-f.hold:
		case <-f.ctx.Done():
		}
	}
	f.sent = append(f.sent, m)
	f.answers += len(m.GetAnswers())
	if f.answers == f.want {
		close(f.ready)
	}
	return nil
}

// serve starts serving f with svc; wait waits until want answers were sent,
// then closes the client side and waits for InvokeStream to return cleanly.
func (f *fakeStream) serve(t *testing.T, svc functionv1.FunctionServiceServer) (wait func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- svc.InvokeStream(f) }()
	return func() {
		t.Helper()
		select {
		case <-f.ready:
		case <-time.After(waitLong):
			t.Fatal("not every call was answered")
		}
		close(f.reqs)
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitLong):
			t.Fatal("InvokeStream did not return")
		}
	}
}

// answered checks that one goroutine sent every message and that they answer
// calls 0 to n-1 once each, every message with 1 to maxBatch answers; it
// returns the answers by call.
func (f *fakeStream) answered(t *testing.T, n int) map[uint64]*functionv1.StreamAnswer {
	t.Helper()
	require.Len(t, f.senders, 1, "Send was called by several goroutines")
	seen := map[uint64]*functionv1.StreamAnswer{}
	for _, m := range f.sent {
		require.NotEmpty(t, m.GetAnswers())
		require.LessOrEqual(t, len(m.GetAnswers()), maxBatch)
		for _, a := range m.GetAnswers() {
			require.NotContains(t, seen, a.GetCall(), "call %d answered twice", a.GetCall())
			require.Less(t, a.GetCall(), uint64(n))
			seen[a.GetCall()] = a
		}
	}
	require.Len(t, seen, n)
	return seen
}

func TestStreamSendsSerialized(t *testing.T) {
	const n = 200
	var start sync.WaitGroup
	start.Add(n)
	svc := NewService(func(context.Context, event.Event) (Result, error) {
		// Hold every handler until all run, so that they answer together.
		start.Done()
		start.Wait()
		return Result{}, nil
	})
	f := newFakeStream(t, n)
	// The calls come packed, a few to a message.
	var calls []*functionv1.StreamCall
	for i := range n {
		calls = append(calls, invokeOf(uint64(i), &functionv1.InvokeRequest{Event: pbEvent(fmt.Sprintf("e%d", i)), Attempt: 1}))
		if len(calls) == 7 || i == n-1 {
			f.reqs <- &functionv1.InvokeStreamRequest{Calls: calls}
			calls = nil
		}
	}
	f.serve(t, svc)()
	for _, a := range f.answered(t, n) {
		require.Zero(t, a.GetCode())
		require.Equal(t, functionv1.Outcome_OUTCOME_ACK, a.GetResponse().GetOutcome())
	}
}

// TestStreamPackingLimits queues answers as finishing calls do and checks how
// the sender takes them: every answer waiting goes in the next message, up to
// maxBatch answers and maxBatchBytes, and an answer larger than the byte bound
// goes alone. It drives the queue directly, so that it does not depend on how
// the handlers' goroutines are scheduled.
func TestStreamPackingLimits(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int // reply data bytes of each answer, in queue order; 0: no reply
		want  []int // answers in each message
	}{
		{name: "one", sizes: make([]int, 1), want: []int{1}},
		{name: "answers", sizes: make([]int, 2*maxBatch+10), want: []int{maxBatch, maxBatch, 10}},
		{name: "bytes", sizes: []int{300 << 10, 300 << 10, 300 << 10, 300 << 10, 300 << 10, 300 << 10, 300 << 10, 300 << 10}, want: []int{3, 3, 2}},
		{name: "too large alone", sizes: []int{10, maxBatchBytes + 1, 10}, want: []int{1, 1, 1}},
		{name: "too large first", sizes: []int{maxBatchBytes + 1, 10, 10}, want: []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &streamState{calls: map[uint64]*streamCall{}, wake: make(chan struct{}, 1)}
			for i, size := range tt.sizes {
				resp := &functionv1.InvokeResponse{}
				if size > 0 {
					resp.Replies = []*pb.CloudEvent{{Id: fmt.Sprintf("reply-e%d", i), Data: &pb.CloudEvent_BinaryData{BinaryData: make([]byte, size)}}}
				}
				st.finish(uint64(i), &streamCall{cancel: func() {}}, streamAnswer(uint64(i), resp, nil))
			}
			var got []int
			next := uint64(0)
			for len(st.queue) > 0 {
				answers := st.next()
				got = append(got, len(answers))
				if len(answers) > 1 {
					require.LessOrEqual(t, proto.Size(&functionv1.InvokeStreamResponse{Answers: answers}), maxBatchBytes)
				}
				for _, a := range answers {
					require.Equal(t, next, a.GetCall(), "answers are sent in the order they finished")
					next++
				}
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestStreamAnswersWaitingTogether holds the first Send until every handler
// has returned: whatever the scheduling, every call is answered once, by one
// sender, replies intact, and no packed message exceeds maxBatchBytes.
func TestStreamAnswersWaitingTogether(t *testing.T) {
	const n = 8
	var returned atomic.Int64
	data := make([]byte, 300<<10)
	svc := NewService(func(_ context.Context, ev event.Event) (Result, error) {
		defer returned.Add(1)
		return Reply(newEvent("reply-"+ev.ID(), "application/octet-stream", data)), nil
	})
	f := newFakeStream(t, n)
	f.hold = make(chan struct{})
	for i := range n {
		f.reqs <- &functionv1.InvokeStreamRequest{Calls: []*functionv1.StreamCall{
			invokeOf(uint64(i), &functionv1.InvokeRequest{Event: pbEvent(fmt.Sprintf("e%d", i)), Attempt: 1}),
		}}
	}
	wait := f.serve(t, svc)
	require.Eventually(t, func() bool { return returned.Load() == n }, waitLong, time.Millisecond)
	close(f.hold)
	wait()
	for call, a := range f.answered(t, n) {
		require.Equal(t, fmt.Sprintf("reply-e%d", call), a.GetResponse().GetReplies()[0].GetId())
	}
	for _, m := range f.sent {
		if len(m.GetAnswers()) > 1 {
			require.LessOrEqual(t, proto.Size(m), maxBatchBytes)
		}
	}
}

func TestStreamSeveralCallsInOneMessage(t *testing.T) {
	r := newCtxRecorder()
	c := openStream(t, func(ctx context.Context, ev event.Event) (Result, error) {
		if strings.HasPrefix(ev.ID(), "block") {
			return r.handler(ctx, ev)
		}
		return Reply(newEvent("reply-"+ev.ID(), "", nil)), nil
	})
	req := func(id string) *functionv1.InvokeRequest {
		return &functionv1.InvokeRequest{Event: pbEvent(id), Attempt: 1}
	}
	// The calls of a message are taken in order: call 1 starts and is then
	// withdrawn; the cancel of call 4 comes before call 4 and is ignored.
	c.send(t,
		invokeOf(1, req("block-a")),
		invokeOf(2, req("ack-b")),
		cancelOf(99),
		invokeOf(3, &functionv1.InvokeRequest{Attempt: 1}),
		cancelOf(1),
		cancelOf(4),
		invokeOf(4, req("block-d")),
		invokeOf(5, req("ack-e")),
	)
	require.Eventually(t, func() bool { return r.err("block-a") != nil && r.isStarted("block-d") }, waitLong, 5*time.Millisecond)
	require.ErrorIs(t, r.err("block-a"), context.Canceled)

	seen := map[uint64]bool{}
	// recvUntil reads answers until every call of want is answered; a
	// withdrawn call may be answered too, at most once.
	recvUntil := func(want ...uint64) {
		t.Helper()
		for {
			missing := false
			for _, call := range want {
				missing = missing || !seen[call]
			}
			if !missing {
				return
			}
			ans := c.recv(t)
			require.False(t, seen[ans.GetCall()], "call %d answered twice", ans.GetCall())
			seen[ans.GetCall()] = true
			switch ans.GetCall() {
			case 2, 5, 6:
				require.Zero(t, ans.GetCode())
				require.Equal(t, functionv1.Outcome_OUTCOME_ACK, ans.GetResponse().GetOutcome())
				id := map[uint64]string{2: "ack-b", 5: "ack-e", 6: "ack-f"}[ans.GetCall()]
				require.Equal(t, "reply-"+id, ans.GetResponse().GetReplies()[0].GetId())
			case 3:
				require.Equal(t, codes.InvalidArgument, codes.Code(ans.GetCode()))
			case 1, 4: // withdrawn: answering is allowed
				require.Equal(t, functionv1.Outcome_OUTCOME_RETRY, ans.GetResponse().GetOutcome())
			default:
				t.Fatalf("answer to call %d, never started", ans.GetCall())
			}
		}
	}
	recvUntil(2, 3, 5)
	require.NoError(t, r.err("block-d"), "a cancel before its call withdrew it")

	// The next message withdraws call 4 and starts call 6.
	c.send(t, cancelOf(4), invokeOf(6, req("ack-f")))
	require.Eventually(t, func() bool { return r.err("block-d") != nil }, waitLong, 5*time.Millisecond)
	require.ErrorIs(t, r.err("block-d"), context.Canceled)
	recvUntil(6)
}

// heldStream holds every SendMsg of a server stream until hold is closed.
type heldStream struct {
	grpc.ServerStream
	hold <-chan struct{}
}

func (h *heldStream) SendMsg(m any) error {
	select {
	case <-h.hold:
	case <-h.Context().Done():
	}
	return h.ServerStream.SendMsg(m)
}

func TestStreamGroupsAnswers(t *testing.T) {
	const n = 50
	var (
		gate     = make(chan struct{})
		hold     = make(chan struct{})
		holdOnce sync.Once
		running  atomic.Int64
		returned atomic.Int64
	)
	release := func() { holdOnce.Do(func() { close(hold) }) }
	t.Cleanup(release) // before the server stops
	// Sending is held until the released calls have all returned, so that
	// the sender finds their answers waiting however the goroutines are
	// scheduled.
	held := grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, &heldStream{ServerStream: ss, hold: hold})
	})
	c := openStream(t, func(_ context.Context, ev event.Event) (Result, error) {
		defer returned.Add(1)
		running.Add(1)
		<-gate
		return Reply(newEvent("reply-"+ev.ID(), "", nil)), nil
	}, held)
	for i := range n {
		c.invoke(t, uint64(i), &functionv1.InvokeRequest{Event: pbEvent(fmt.Sprintf("e%d", i)), Attempt: 1})
	}
	require.Eventually(t, func() bool { return running.Load() == n }, waitLong, 5*time.Millisecond)
	close(gate) // every call finishes at once
	require.Eventually(t, func() bool { return returned.Load() == n }, waitLong, 5*time.Millisecond)
	release()

	seen := map[uint64]bool{}
	for len(seen) < n {
		for _, ans := range c.recvMsg(t).GetAnswers() {
			require.False(t, seen[ans.GetCall()], "call %d answered twice", ans.GetCall())
			seen[ans.GetCall()] = true
			require.Zero(t, ans.GetCode())
			require.Equal(t, fmt.Sprintf("reply-e%d", ans.GetCall()), ans.GetResponse().GetReplies()[0].GetId())
		}
	}
	require.Len(t, seen, n)
	require.LessOrEqual(t, c.msgs, n-1, "%d answers came in %d messages", n, c.msgs)
	t.Logf("%d answers in %d messages", n, c.msgs)
}

// The function server has fixed flow-control windows: with gRPC's default
// BDP estimation it would start at 64 KiB and ping Switchyard after nearly
// every attempt below saturation.
func TestServerWindows(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ServeListener(ctx, lis, func(context.Context, event.Event) (Result, error) { return Result{}, nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	c, err := net.Dial("tcp", lis.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, http2.ClientPreface)
	require.NoError(t, err)
	fr := http2.NewFramer(c, c)
	require.NoError(t, fr.WriteSettings())
	for {
		f, err := fr.ReadFrame()
		require.NoError(t, err)
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, ok := sf.Value(http2.SettingInitialWindowSize)
			require.True(t, ok, "SETTINGS without INITIAL_WINDOW_SIZE")
			require.EqualValues(t, 4<<20, v)
			return
		}
	}
}
