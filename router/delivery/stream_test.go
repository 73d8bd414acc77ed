package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// streamFunc is a function endpoint serving InvokeStream (and Invoke) whose
// answer to each call is decided by answer; a nil answer leaves the call
// unanswered. With end set, the stream handler returns (status OK) after
// receiving that many invocations, leaving them unanswered.
type streamFunc struct {
	functionv1.UnimplementedFunctionServiceServer
	answer  func(req *functionv1.InvokeRequest) *functionv1.StreamAnswer
	end     int
	streams atomic.Int64 // InvokeStream handlers started
	unary   atomic.Int64 // Invoke calls

	mu       sync.Mutex
	messages int // request messages received
	reqs     []*functionv1.InvokeRequest
	cancels  []uint64
	received []uint64
}

func (f *streamFunc) Invoke(context.Context, *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	f.unary.Add(1)
	return &functionv1.InvokeResponse{}, nil
}

func (f *streamFunc) InvokeStream(st functionv1.FunctionService_InvokeStreamServer) error {
	f.streams.Add(1)
	var sendMu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	n := 0
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.messages++
		f.mu.Unlock()
		for _, c := range m.GetCalls() {
			f.mu.Lock()
			if c.GetCancel() {
				f.cancels = append(f.cancels, c.GetCall())
				f.mu.Unlock()
				continue
			}
			f.reqs = append(f.reqs, c.GetInvoke())
			f.received = append(f.received, c.GetCall())
			f.mu.Unlock()
			n++
			if f.end > 0 && n >= f.end {
				return nil
			}
			wg.Add(1)
			go func() { // answered concurrently, in any order
				defer wg.Done()
				a := f.answer(c.GetInvoke())
				if a == nil {
					return
				}
				a.Call = c.GetCall()
				sendMu.Lock()
				defer sendMu.Unlock()
				_ = st.Send(&functionv1.InvokeStreamResponse{Answers: []*functionv1.StreamAnswer{a}})
			}()
		}
	}
}

func (f *streamFunc) cancelled() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.cancels...)
}

// serveFunc serves fs on 127.0.0.1:0; the server is stopped at cleanup.
func serveFunc(t *testing.T, fs functionv1.FunctionServiceServer) (addr string, srv *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv = grpc.NewServer()
	functionv1.RegisterFunctionServiceServer(srv, fs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), srv
}

// connected makes tg's connection to addr ready: until it is, attempts go
// unary (see Targets.stream).
func connected(t *testing.T, tg *Targets, addr string) {
	t.Helper()
	gc, err := tg.plainConn(addr)
	require.NoError(t, err)
	cc := gc.cc
	cc.Connect()
	require.Eventually(t, func() bool { return cc.GetState() == connectivity.Ready }, 5*time.Second, time.Millisecond)
}

func ack(*functionv1.InvokeRequest) *functionv1.StreamAnswer {
	return &functionv1.StreamAnswer{Response: &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_ACK}}
}

func streamAttempt(t *testing.T, addr string, number int, timeout time.Duration) *Attempt {
	t.Helper()
	raw, err := proto.Marshal(sampleEvents(t)["extensions"])
	require.NoError(t, err)
	key, err := ScanEvent(raw)
	require.NoError(t, err)
	return &Attempt{Trigger: "orders", GRPC: addr, Raw: raw, Key: key, Number: number, Timeout: timeout}
}

// traceOf is the trace context of attempt n: none for odd n (tracing off),
// a span of its own for even n.
func traceOf(n int) map[string]string {
	if n%2 == 1 {
		return nil
	}
	return map[string]string{"traceparent": fmt.Sprintf("00-0af7651916cd43dd8448eb211c80319c-%016x-01", n)}
}

// Concurrent attempts share one stream; the function receives exactly the
// request a unary call would carry, each with its own trace context (the
// stream has no metadata per call).
func TestStreamCarriesAttempts(t *testing.T) {
	fs := &streamFunc{answer: ack}
	addr, _ := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	connected(t, tg, addr)

	const n = 64
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := streamAttempt(t, addr, i+1, 10*time.Second)
			a.Trace = traceOf(i + 1)
			results[i] = tg.Invoke(context.Background(), a)
		}()
	}
	wg.Wait()
	for i, r := range results {
		require.Equal(t, Ack, r.Verdict, "attempt %d: %s %s", i+1, r.Code, r.Message)
	}
	require.EqualValues(t, 1, fs.streams.Load(), "one stream for every attempt")
	require.Zero(t, fs.unary.Load())

	fs.mu.Lock()
	defer fs.mu.Unlock()
	require.Len(t, fs.reqs, n)
	seen := map[uint64]bool{}
	for _, c := range fs.received {
		require.False(t, seen[c], "call number %d used twice", c)
		seen[c] = true
	}
	a := streamAttempt(t, addr, 0, 0)
	for _, req := range fs.reqs {
		a.Number = int(req.GetAttempt())
		a.Trace = traceOf(a.Number)
		want, err := oldRequest(a.Raw, a, req.GetDeadline().AsTime())
		require.NoError(t, err)
		require.True(t, proto.Equal(want, req), "got %v\nwant %v", req, want)
		require.WithinDuration(t, time.Now().Add(10*time.Second), req.GetDeadline().AsTime(), 5*time.Second)
	}
}

// Answers on the stream are classified exactly as unary answers are.
func TestStreamAnswersClassified(t *testing.T) {
	for _, tc := range []struct {
		name    string
		resp    *functionv1.StreamAnswer
		verdict Verdict
		code    string
		after   time.Duration
		health  bool
	}{
		{"ack", &functionv1.StreamAnswer{}, Ack, "OK", 0, false},
		{"retry outcome", &functionv1.StreamAnswer{Response: &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_RETRY, RetryAfter: durationpb.New(3 * time.Second), Reason: "busy"}}, Retry, "RETRY", 3 * time.Second, false},
		{"dead outcome", &functionv1.StreamAnswer{Response: &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_DEAD, Reason: "no"}}, DeadNow, "DEAD", 0, false},
		{"unavailable with delay", &functionv1.StreamAnswer{Code: int32(codes.Unavailable), Message: "down", RetryDelay: durationpb.New(2 * time.Second)}, Retry, "UNAVAILABLE", 2 * time.Second, true},
		{"invalid argument", &functionv1.StreamAnswer{Code: int32(codes.InvalidArgument), Message: "bad"}, DeadNow, "INVALID_ARGUMENT", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &streamFunc{answer: func(*functionv1.InvokeRequest) *functionv1.StreamAnswer {
				return proto.Clone(tc.resp).(*functionv1.StreamAnswer)
			}}
			addr, _ := serveFunc(t, fs)
			tg := NewTargets(TargetsConfig{})
			defer tg.Close()
			connected(t, tg, addr)
			r := tg.Invoke(context.Background(), streamAttempt(t, addr, 1, 10*time.Second))
			require.Equal(t, tc.verdict, r.Verdict, r.Message)
			require.Equal(t, tc.code, r.Code)
			require.Equal(t, tc.after, r.RetryAfter)
			require.Equal(t, tc.health, r.Health)
			require.EqualValues(t, 1, fs.streams.Load())
		})
	}
}

// An attempt past its timeout fails with DEADLINE_EXCEEDED and the function
// is told to stop working on it; the stream goes on serving.
func TestStreamTimeoutCancelsCall(t *testing.T) {
	fs := &streamFunc{answer: func(req *functionv1.InvokeRequest) *functionv1.StreamAnswer {
		if req.GetAttempt() == 1 {
			return nil // never answered
		}
		return ack(req)
	}}
	addr, _ := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	connected(t, tg, addr)

	r := tg.Invoke(context.Background(), streamAttempt(t, addr, 1, 200*time.Millisecond))
	require.Equal(t, Retry, r.Verdict)
	require.Equal(t, "DEADLINE_EXCEEDED", r.Code)
	require.Eventually(t, func() bool { return len(fs.cancelled()) == 1 }, 5*time.Second, 10*time.Millisecond)
	fs.mu.Lock()
	require.Equal(t, fs.received[0], fs.cancels[0], "the cancel names the timed-out call")
	fs.mu.Unlock()

	r = tg.Invoke(context.Background(), streamAttempt(t, addr, 2, 10*time.Second))
	require.Equal(t, Ack, r.Verdict, r.Message)
	require.EqualValues(t, 1, fs.streams.Load())
}

// A target without InvokeStream gets unary calls, and is not asked for a
// stream again on every attempt.
func TestStreamFallsBackToUnary(t *testing.T) {
	rec := &recorder{}
	addr, _ := serveFunc(t, rec)
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	connected(t, tg, addr)
	connected(t, tg, addr)
	for i := range 3 {
		r := tg.Invoke(context.Background(), streamAttempt(t, addr, i+1, 10*time.Second))
		require.Equal(t, Retry, r.Verdict, r.Message) // recorder answers RETRY "later"
		require.Equal(t, "later", r.Message)
		require.EqualValues(t, i+1, rec.req.GetAttempt(), "the unary call carried the attempt")
	}
	gc, err := tg.plainConn(addr)
	require.NoError(t, err)
	st := &gc.st
	st.mu.Lock()
	defer st.mu.Unlock()
	require.WithinDuration(t, time.Now().Add(unsupportedFor), st.unsupported, time.Minute)
}

// With TargetsConfig.Unary no stream is opened.
func TestUnaryConfigNeverStreams(t *testing.T) {
	fs := &streamFunc{answer: ack}
	addr, _ := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{Unary: true})
	defer tg.Close()
	r := tg.Invoke(context.Background(), streamAttempt(t, addr, 1, 10*time.Second))
	require.Equal(t, Ack, r.Verdict, r.Message)
	require.Zero(t, fs.streams.Load())
	require.EqualValues(t, 1, fs.unary.Load())
}

// Calls open when the function ends the stream fail with UNAVAILABLE (so
// they are retried); the next attempt opens a new stream.
func TestStreamEndFailsOpenCalls(t *testing.T) {
	fs := &streamFunc{answer: ack, end: 3}
	addr, _ := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	connected(t, tg, addr)
	var wg sync.WaitGroup
	results := make([]Result, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := streamAttempt(t, addr, i+1, 10*time.Second)
			a.Trace = traceOf(i + 1)
			results[i] = tg.Invoke(context.Background(), a)
		}()
	}
	wg.Wait()
	failed := 0
	for _, r := range results {
		if r.Verdict == Retry && r.Code == "UNAVAILABLE" && r.Health {
			failed++
		}
	}
	require.Positive(t, failed, "the call that ended the stream was never answered: %+v", results)

	fs.end = 0
	r := tg.Invoke(context.Background(), streamAttempt(t, addr, 4, 10*time.Second))
	require.Equal(t, Ack, r.Verdict, r.Message)
	require.GreaterOrEqual(t, fs.streams.Load(), int64(2))
}

// A function server stopping gracefully is not held up by the open stream:
// Switchyard half-closes it once its calls are answered.
func TestStreamLetsGracefulStopFinish(t *testing.T) {
	fs := &streamFunc{answer: ack}
	addr, srv := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	connected(t, tg, addr)
	r := tg.Invoke(context.Background(), streamAttempt(t, addr, 1, 10*time.Second))
	require.Equal(t, Ack, r.Verdict, r.Message)

	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("GracefulStop still waits for the InvokeStream")
	}
}

// Closing the Targets fails the attempts still waiting on a stream.
func TestStreamCloseCancelsWaitingAttempts(t *testing.T) {
	fs := &streamFunc{answer: func(*functionv1.InvokeRequest) *functionv1.StreamAnswer { return nil }}
	addr, _ := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{})
	connected(t, tg, addr)
	done := make(chan Result, 1)
	go func() { done <- tg.Invoke(context.Background(), streamAttempt(t, addr, 1, time.Minute)) }()
	require.Eventually(t, func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		return len(fs.reqs) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, tg.Close())
	select {
	case r := <-done:
		require.Equal(t, "CANCELLED", r.Code, r.Message)
	case <-time.After(10 * time.Second):
		t.Fatal("attempt still waiting after Close")
	}
}

// Until the connection is ready an attempt goes unary, so that opening a
// stream never waits past the attempt's deadline; then attempts stream.
func TestStreamNotBeforeConnectionReady(t *testing.T) {
	fs := &streamFunc{answer: ack}
	addr, _ := serveFunc(t, fs)
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	r := tg.Invoke(context.Background(), streamAttempt(t, addr, 1, 10*time.Second))
	require.Equal(t, Ack, r.Verdict, r.Message)
	require.EqualValues(t, 1, fs.unary.Load(), "the first attempt found no connection")
	connected(t, tg, addr)
	r = tg.Invoke(context.Background(), streamAttempt(t, addr, 2, 10*time.Second))
	require.Equal(t, Ack, r.Verdict, r.Message)
	require.EqualValues(t, 1, fs.streams.Load())
	require.EqualValues(t, 1, fs.unary.Load())
}

// fakeClientStream records what a sender sends.
type fakeClientStream struct {
	grpc.ClientStream
	mu     sync.Mutex
	sent   []*functionv1.InvokeStreamRequest
	closed bool
}

func (f *fakeClientStream) SendMsg(m any) error {
	req := &functionv1.InvokeStreamRequest{}
	if err := proto.Unmarshal(m.(preEncoded), req); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, req)
	return nil
}

func (f *fakeClientStream) CloseSend() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// The sender packs the calls already waiting into one message, within
// packCalls and packBytes, and never waits for more.
func TestStreamSenderPacksWaitingCalls(t *testing.T) {
	for _, tc := range []struct {
		name      string
		calls     int
		size      int
		wantFirst int
	}{
		{"small calls", 10, 100, 11}, // the cancel too
		{"more than packCalls", packCalls + 5, 100, packCalls},
		{"large calls", 8, 300 << 10, 4}, // the fourth passes packBytes
		{"one call", 1, 100, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fcs := &fakeClientStream{}
			s := &invokeStream{st: fcs, sendq: make(chan streamCall, sendQueue), done: make(chan struct{})}
			req, err := proto.Marshal(&functionv1.InvokeRequest{Trigger: strings.Repeat("t", tc.size)})
			require.NoError(t, err)
			for i := range tc.calls {
				s.sendq <- streamCall{id: uint64(i + 1), req: req}
			}
			s.sendq <- streamCall{id: 1}
			close(s.sendq) // the sender sends what is queued, then half-closes
			s.sendLoop()
			fcs.mu.Lock()
			defer fcs.mu.Unlock()
			require.True(t, fcs.closed)
			require.Len(t, fcs.sent[0].GetCalls(), tc.wantFirst)
			var got []uint64
			cancels := 0
			for _, m := range fcs.sent {
				for _, c := range m.GetCalls() {
					if c.GetCancel() {
						cancels++
						continue
					}
					require.Len(t, c.GetInvoke().GetTrigger(), tc.size)
					got = append(got, c.GetCall())
				}
			}
			require.Equal(t, 1, cancels)
			require.Len(t, got, tc.calls)
			for i, c := range got {
				require.EqualValues(t, i+1, c, "calls go in order")
			}
		})
	}
}

// The connection to a function has fixed flow-control windows: with gRPC's
// default BDP estimation it would start at 64 KiB and ping the function
// after nearly every answer below saturation.
func TestFunctionConnectionWindows(t *testing.T) {
	tg := NewTargets(TargetsConfig{})
	defer tg.Close()
	a := streamAttempt(t, "", 1, 2*time.Second)
	got := testenv.ClientH2Settings(t, func(addr string) {
		a.GRPC = addr
		_ = tg.Invoke(context.Background(), a)
	})
	require.EqualValues(t, streamWindow, got[http2.SettingInitialWindowSize])
}
