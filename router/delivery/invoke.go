package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/internal/tlsfiles"
	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// MaxMessage bounds the error text kept per attempt.
const MaxMessage = 1024

// Attempt is one delivery attempt to make.
type Attempt struct {
	Trigger string
	// GRPC or URL: the target, exactly one set.
	GRPC, URL string
	// Raw is the event as stored, an io.cloudevents.v1.CloudEvent in the
	// protobuf encoding, and Key the idempotency key ScanEvent returned for
	// it: what gRPC targets receive (see raw.go).
	Raw []byte
	Key string
	// Event is the event decoded, for HTTP targets (binary mode puts the
	// attributes in headers).
	Event  *pb.CloudEvent
	Number int
	// Round is the event's life: 0 until it is first dead-lettered, n after
	// its n-th replay (InvokeRequest.round).
	Round int
	// Hops is the hop count this delivery carries, the event's
	// HopsExtension plus one (0: none to send). An HTTP delivery sends it
	// as the ce-switchyardhops header, so that a target posting the event
	// back into Switchyard's /events (a loop) hands on the count the loop
	// guard stops at. A gRPC delivery sends the event as stored, and the
	// function's replies get the count when they are published.
	Hops    int
	Timeout time.Duration
	// Endpoint holds the target's TLS and credential settings (nil: none);
	// the same pointer for every attempt of a trigger version (see
	// outbound.go).
	Endpoint *Endpoint
	// Trace holds the attempt span's propagation fields (traceparent,
	// tracestate), nil when tracing is off: gRPC targets get them in
	// InvokeRequest.trace_context and, on a unary call, as metadata; HTTP
	// targets as headers.
	Trace map[string]string
}

// HopsExtension is the CloudEvents extension attribute counting how many
// times an event passed through Switchyard: replies published and
// deliveries made (the loop guard).
const HopsExtension = "switchyardhops"

// hopsHeader is HopsExtension's header in HTTP binary mode.
const hopsHeader = "Ce-Switchyardhops"

// IdempotencyKey is the key sent with every attempt: source and id.
func IdempotencyKey(ev *pb.CloudEvent) string { return ev.GetSource() + " " + ev.GetId() }

// Result is the outcome of one attempt.
type Result struct {
	Verdict Verdict
	// Health is set when the failure speaks of the target's health.
	Health bool
	// Reason is set with DeadNow.
	Reason switchyardv1.DeadLetterReason
	// Code is the gRPC code name, "HTTP <status>" or "TRANSPORT".
	Code       string
	HTTPStatus int
	Message    string
	RetryAfter time.Duration
	Replies    []*pb.CloudEvent
	Start      time.Time
	Duration   time.Duration
}

// Invoker calls targets. Implementations are safe for concurrent use and keep
// connections warm between calls.
type Invoker interface {
	// Invoke makes the attempt; ctx bounds it together with a.Timeout.
	Invoke(ctx context.Context, a *Attempt) Result
	// Close releases every connection.
	Close() error
}

// TargetsConfig configures Targets. The zero value is ready to use.
type TargetsConfig struct {
	// Unary makes every gRPC attempt a unary Invoke call, never a message
	// on an InvokeStream (see stream.go).
	Unary bool
	// DialOptions are added to every gRPC connection (insecure transport by
	// default).
	DialOptions []grpc.DialOption
	// Logger receives stream events (slog.Default() when nil).
	Logger *slog.Logger
	// Outbound is the egress guard, TLS defaults and secrets (see
	// outbound.go); the zero value checks nothing.
	Outbound Outbound
}

// Targets invokes gRPC and HTTP targets, reusing one gRPC connection (and
// one InvokeStream) per host:port and settings, and one keep-alive HTTP
// client per TLS settings (see conns.go).
type Targets struct {
	mu       sync.Mutex
	conns    map[string]*grpcConn
	clients  map[string]*httpClient
	profiles map[string]*tlsProfile
	cas      map[string]*tlsfiles.CAPool
	certs    map[string]*tlsfiles.Reloader
	secrets  map[string]*secretCache
	out      Outbound
	// secretTTL is how long a resolved secret is used (secretRefresh).
	secretTTL time.Duration
	opts      []grpc.DialOption
	unary     bool
	log       *slog.Logger
	// outcomeWarned holds the gRPC targets already warned about an answer
	// without a defined outcome (see warnOutcome).
	outcomeWarned sync.Map

	pubs publishers // broker targets (see publish.go)

	base       context.Context // streams live under it
	cancelBase context.CancelFunc
	wg         sync.WaitGroup // stream goroutines
}

// streamWindow and connWindow are the HTTP/2 flow-control windows of the
// connections to functions, fixed: with gRPC's default (BDP estimation) a
// connection answers the first data it receives after a quiet moment (a
// function's answer, below saturation every one) with a window update and a
// PING, and reads the PING's answer, two syscalls and two wake-ups more per
// attempt (issue 11). The estimate would grow a window to 16 MiB at most.
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

// NewTargets returns an Invoker.
func NewTargets(cfg TargetsConfig) *Targets {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Targets{
		conns:     map[string]*grpcConn{},
		clients:   map[string]*httpClient{},
		profiles:  map[string]*tlsProfile{},
		cas:       map[string]*tlsfiles.CAPool{},
		certs:     map[string]*tlsfiles.Reloader{},
		secrets:   map[string]*secretCache{},
		out:       cfg.Outbound,
		secretTTL: secretRefresh,
		opts: append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20)),
			grpc.WithStaticStreamWindowSize(streamWindow),
			grpc.WithStaticConnWindowSize(connWindow),
		}, cfg.DialOptions...),
		unary: cfg.Unary,
		log:   cfg.Logger,
	}
	t.base, t.cancelBase = context.WithCancel(context.Background())
	return t
}

// Invoke implements Invoker.
func (t *Targets) Invoke(ctx context.Context, a *Attempt) Result {
	start := time.Now()
	var r Result
	if a.Endpoint != nil && a.Endpoint.Publish != nil {
		r = t.invokePublish(ctx, a, a.Endpoint.Publish)
		r.Start, r.Duration = start, time.Since(start)
		if r.Verdict == DeadNow && r.Reason == switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_UNSPECIFIED {
			r.Reason = switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE
		}
		r.Message = Truncate(r.Message, MaxMessage)
		return r
	}
	p, fail := t.prepare(a, start)
	switch {
	case fail != nil:
		r = *fail
	case a.GRPC != "":
		r = t.invokeGRPC(ctx, a, p, start.Add(a.Timeout))
	default:
		ctx, cancel := context.WithTimeoutCause(ctx, a.Timeout, errDeadline)
		r = t.invokeHTTP(ctx, a, p)
		cancel()
	}
	if r.Verdict != Ack && p != nil {
		r = p.afterFailure(r)
	}
	r.Start, r.Duration = start, time.Since(start)
	if r.Verdict == DeadNow && r.Reason == switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_UNSPECIFIED {
		r.Reason = switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE
	}
	r.Message = Truncate(r.Message, MaxMessage)
	return r
}

// invokeGRPC makes a gRPC attempt that ends at deadline. A call on a
// stream waits with a timer rather than a context of its own: deriving one
// per attempt from the router's context cost 4% of the server's CPU.
func (t *Targets) invokeGRPC(ctx context.Context, a *Attempt, p *prepared, deadline time.Time) Result {
	cc := p.gc.cc
	req := encodeInvokeRequest(a, deadline) // see raw.go
	if !t.unary {
		for range 3 { // a stream may retire between being chosen and used
			s, err := t.stream(p.gc)
			if errors.Is(err, errNoStreams) || errors.Is(err, errNotYet) {
				break
			}
			if err != nil {
				return failedCall(ctx, err, 0)
			}
			resp, err, ok := s.call(ctx, deadline, req)
			if !ok {
				break // the target does not serve streams: call it
			}
			if errors.Is(err, errRetired) {
				continue
			}
			if err != nil {
				return failedCall(ctx, err, 0)
			}
			if c := codes.Code(resp.GetCode()); c != codes.OK {
				return failedCall(ctx, status.Error(c, resp.GetMessage()), resp.GetRetryDelay().AsDuration())
			}
			return t.answered(a, resp.GetResponse())
		}
	}
	ctx, cancel := context.WithDeadlineCause(ctx, deadline, errDeadline)
	defer cancel()
	for k, v := range a.Trace {
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	resp := &functionv1.InvokeResponse{}
	err := cc.Invoke(ctx, functionv1.FunctionService_Invoke_FullMethodName, preEncoded(req), resp, invokeOpts...)
	if err != nil {
		return failedCall(ctx, err, RetryInfoDelay(err))
	}
	return t.answered(a, resp)
}

// failedCall classifies a call that ended in err (a gRPC status or a
// context error) under ctx, the attempt's context.
func failedCall(ctx context.Context, err error, retryAfter time.Duration) Result {
	code := status.Code(err)
	switch {
	case errors.Is(err, errDeadline) || context.Cause(ctx) == errDeadline:
		code = codes.DeadlineExceeded // whatever the transport reported
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		code = status.FromContextError(err).Code()
	}
	v, health := ClassifyCode(code)
	return Result{Verdict: v, Health: health, Code: CodeName(code), Message: status.Convert(err).Message(), RetryAfter: retryAfter}
}

// answered maps a function's answer to attempt a (an OK status) to a
// Result.
func (t *Targets) answered(a *Attempt, resp *functionv1.InvokeResponse) Result {
	r := Result{Code: "OK", Message: resp.GetReason(), Replies: resp.GetReplies()}
	switch o := resp.GetOutcome(); o {
	case functionv1.Outcome_OUTCOME_ACK:
		r.Verdict = Ack
	case functionv1.Outcome_OUTCOME_RETRY:
		r.Verdict, r.Code = Retry, "RETRY"
		r.RetryAfter = resp.GetRetryAfter().AsDuration()
	case functionv1.Outcome_OUTCOME_DEAD:
		r.Verdict, r.Code, r.Reason = DeadNow, "DEAD", switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED
	default:
		// The contract acknowledges OUTCOME_UNSPECIFIED and values it does
		// not define, so an empty response is an acknowledgement. It is also
		// what a function sends when its protobuf library dropped a
		// misspelled outcome or retry_after under another name, and the
		// event is then gone: say so, once per function.
		r.Verdict = Ack
		t.warnOutcome(a, o)
	}
	return r
}

// warnOutcome logs, the first time a gRPC target answers without one of the
// defined outcomes, that the answer acknowledged the event. Once per target
// address: a function that relies on the empty answer is not flooded with
// a line per event.
func (t *Targets) warnOutcome(a *Attempt, o functionv1.Outcome) {
	if _, told := t.outcomeWarned.LoadOrStore(a.GRPC, struct{}{}); told {
		return
	}
	t.log.Warn("function answered without an outcome: acknowledged (logged once per function address)",
		"target", a.GRPC, "trigger", a.Trigger, "outcome", int32(o),
		"hint", "send OUTCOME_ACK explicitly; a misspelled outcome, or retry_after under another name, also arrives as no outcome")
}

func (t *Targets) invokeHTTP(ctx context.Context, a *Attempt, p *prepared) Result {
	h := http.Header{}
	body := cloudevent.WriteBinary(a.Event, h)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return Result{Verdict: DeadNow, Code: "TRANSPORT", Message: err.Error(), Health: true}
	}
	req.Header = h
	req.Header.Set("Switchyard-Attempt", strconv.Itoa(a.Number))
	req.Header.Set("Switchyard-Trigger", a.Trigger)
	if a.Round != 0 {
		req.Header.Set("Switchyard-Round", strconv.Itoa(a.Round))
	}
	req.Header.Set("Idempotency-Key", IdempotencyKey(a.Event))
	for k, v := range a.Trace { // the attempt's span; ce-traceparent is the event's origin
		req.Header.Set(k, v)
	}
	if a.Hops > 0 {
		req.Header[hopsHeader] = []string{strconv.Itoa(a.Hops)}
	}
	p.authorize(req, a, body)
	resp, err := p.client.Do(req)
	if err != nil {
		return p.httpFailure(ctx, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, MaxMessage))
	v, health := ClassifyHTTP(resp.StatusCode)
	r := Result{Verdict: v, Health: health, Code: fmt.Sprintf("HTTP %d", resp.StatusCode), HTTPStatus: resp.StatusCode,
		RetryAfter: RetryAfterHeader(resp.Header.Get("Retry-After"), time.Now())}
	if v != Ack {
		r.Message = string(msg)
	}
	return r
}

// Close implements Invoker. Attempts still running on a stream fail with
// CANCELLED; broker publishers are closed.
func (t *Targets) Close() error {
	t.closeStreams()
	t.pubs.closeAll()
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for k, c := range t.conns {
		errs = append(errs, c.cc.Close())
		delete(t.conns, k)
	}
	for _, c := range t.clients {
		c.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// CodeName returns the canonical name of a gRPC code, as the gRPC
// specification writes it ("DEADLINE_EXCEEDED"), rather than grpc-go's
// String() ("DeadlineExceeded").
func CodeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled: // grpc-go spells it the American way
		return "CANCELLED"
	}
	s := c.String()
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// Truncate cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…[truncated]"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
