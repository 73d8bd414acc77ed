package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/backoff"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// PullHandler processes one event pulled from a pull trigger.
//
// Its error decides the answer, as a function's does in sdk/function: nil
// acknowledges the event; [function.RetryAfter] asks for another attempt
// after a delay; [function.Dead] dead-letters the event at once; a gRPC
// status error is classified by its code as Switchyard classifies a
// function's (UNAVAILABLE retried, INVALID_ARGUMENT dead-lettered, ...);
// any other error retries after the trigger's backoff; [Release] hands the
// event back without counting the attempt (only for an event the handler
// did not act on). A panic is recovered and retried.
//
// The context carries the attempt's [function.Info] (function.FromContext:
// attempt, trigger, lease deadline, idempotency key, round). It is cancelled
// when the lease is lost (the event may go to another consumer: stop
// working on it), when the stream to Switchyard breaks, and when a graceful
// stop's drain timeout passes. Handlers run concurrently, up to
// SubscribeOptions.Concurrency.
type PullHandler func(ctx context.Context, ev event.Event) error

// SubscribeOptions configure [Client.Subscribe]. The zero value is usable.
type SubscribeOptions struct {
	// Concurrency is how many events are handled at once: the credits
	// granted to Switchyard, so no more are leased to this consumer.
	// Default 1.
	Concurrency int
	// MaxLeaseExtension bounds how long a handler may keep an event beyond
	// its first lease: while it runs, its lease is extended (by the
	// trigger's timeout each time, a third of the lease before it runs out)
	// until this much time has passed since the event arrived. Default 1h;
	// negative: never extended (the trigger's timeout is the limit).
	MaxLeaseExtension time.Duration
	// DrainTimeout bounds a graceful stop: handlers still running this long
	// after ctx is done are cancelled, and their events handed back (the
	// attempt counts). Default 30s.
	DrainTimeout time.Duration
	// Consumer names this consumer in Switchyard's logs (at most 128 bytes).
	Consumer string
	// Logger receives reconnections and handler panics (slog.Default when
	// nil).
	Logger *slog.Logger
}

func (o SubscribeOptions) withDefaults() SubscribeOptions {
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.MaxLeaseExtension == 0 {
		o.MaxLeaseExtension = time.Hour
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// MaxSubscribeConcurrency bounds SubscribeOptions.Concurrency.
const MaxSubscribeConcurrency = 10_000

// ReleaseError hands an event back without counting the attempt. Handlers
// create it with [Release].
type ReleaseError struct{ Err error }

// Release returns an error that answers the event with RELEASE: it is ready
// again at once, at the head of the queue, and its next attempt carries the
// same number. Use it only for an event the handler did not act on (it was
// stopping, say): an attempt that had effects must count.
func Release(err error) error { return &ReleaseError{Err: err} }

func (e *ReleaseError) Error() string {
	if e.Err == nil {
		return "released"
	}
	return "released: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ReleaseError) Unwrap() error { return e.Err }

// Pulls returns the generated PullService client on the Client's
// connection, for consumers that drive the stream themselves; Subscribe
// does it for a handler.
func (c *Client) Pulls() switchyardv1.PullServiceClient {
	return switchyardv1.NewPullServiceClient(c.conn)
}

// Subscribe consumes the pull trigger (target `pull: {}`) named trigger,
// calling h for each event, until ctx is done. Several consumers of one
// trigger, in this process or others, compete for its events: each goes to
// one of them at a time. Delivery is at least once: an event whose answer
// is lost, whose lease runs out or whose stream breaks comes again.
//
// When ctx is done, Subscribe stops gracefully: it takes no more events,
// hands back those it received but did not start (uncounted), waits up to
// DrainTimeout for the running handlers and sends their answers, then
// cancels the handlers left and hands their events back (counted), and
// returns nil once every answer sent is recorded and every handler has
// returned.
//
// It reconnects, with backoff, after errors that may pass (UNAVAILABLE, a
// server stopping, a broken connection); the running handlers' contexts are
// cancelled then, as their leases end with the stream. It returns an error
// for those that will not pass: NOT_FOUND (no such trigger, or not one the
// credentials may consume), FAILED_PRECONDITION (not a pull trigger),
// PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT.
func (c *Client) Subscribe(ctx context.Context, trigger string, h PullHandler, opts SubscribeOptions) error {
	if h == nil {
		return errors.New("switchyard: Subscribe: nil handler")
	}
	opts = opts.withDefaults()
	if trigger == "" {
		return errors.New("switchyard: Subscribe: no trigger")
	}
	if opts.Concurrency < 1 || opts.Concurrency > MaxSubscribeConcurrency {
		return fmt.Errorf("switchyard: Subscribe: concurrency must be between 1 and %d, got %d", MaxSubscribeConcurrency, opts.Concurrency)
	}
	var wait time.Duration
	for {
		s := newPullSession(c, trigger, h, opts)
		err := s.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if permanentPullError(err) {
			return mapError(err, triggerCall)
		}
		if s.received {
			wait = 0
		}
		// Jittered (internal/backoff): the consumers of a server that
		// restarted do not reconnect in lockstep.
		wait = backoff.Next(wait, 50*time.Millisecond, 5*time.Second)
		opts.Logger.Warn("switchyard: pull stream ended; reconnecting", "trigger", trigger, "err", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// permanentPullError reports whether a stream's error will not pass by
// reconnecting.
func permanentPullError(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.Unimplemented:
		return true
	}
	return false
}

// pullSession is one stream: a receiver goroutine, a sender goroutine, the
// handlers, and run's loop, which owns the state below.
type pullSession struct {
	c       *Client
	trigger string
	h       PullHandler
	opts    SubscribeOptions

	received bool // an event arrived (the backoff starts again)
	running  map[string]*pulledRun
	results  chan pullResult
	out      pullOutbox
	stopping bool
}

type pulledRun struct {
	ref      *switchyardv1.PulledEvent
	cancel   context.CancelFunc
	arrived  time.Time
	deadline time.Time
	length   time.Duration // of the current lease
	asked    bool          // an extension is pending
	lost     bool
}

type pullResult struct {
	id     string
	answer *switchyardv1.PullAnswer
}

func newPullSession(c *Client, trigger string, h PullHandler, opts SubscribeOptions) *pullSession {
	return &pullSession{c: c, trigger: trigger, h: h, opts: opts, running: map[string]*pulledRun{},
		results: make(chan pullResult, opts.Concurrency), out: pullOutbox{wake: make(chan struct{}, 1)}}
}

// pullOutbox merges what is to be sent into one request while the sender
// is busy.
type pullOutbox struct {
	mu      sync.Mutex
	req     *switchyardv1.PullRequest
	closing bool
	wake    chan struct{}
}

func (o *pullOutbox) add(fn func(*switchyardv1.PullRequest)) {
	o.mu.Lock()
	if o.req == nil {
		o.req = &switchyardv1.PullRequest{}
	}
	fn(o.req)
	o.mu.Unlock()
	o.signal()
}

func (o *pullOutbox) close() {
	o.mu.Lock()
	o.closing = true
	o.mu.Unlock()
	o.signal()
}

func (o *pullOutbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// sendLoop sends what the outbox holds until it is closed (then it
// half-closes the stream) or a Send fails.
func (s *pullSession) sendLoop(ctx context.Context, stream switchyardv1.PullService_PullClient) error {
	for {
		select {
		case <-s.out.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.out.mu.Lock()
		req, closing := s.out.req, s.out.closing
		s.out.req = nil
		s.out.mu.Unlock()
		if req != nil {
			if err := stream.Send(req); err != nil {
				return err
			}
		}
		if closing {
			return stream.CloseSend()
		}
	}
}

// run runs one stream until it ends or a graceful stop completes.
func (s *pullSession) run(ctx context.Context) error {
	// The stream outlives ctx by the drain: it is ended here.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stream, err := s.c.Pulls().Pull(sctx)
	if err != nil {
		return err
	}
	s.out.add(func(r *switchyardv1.PullRequest) {
		r.Trigger, r.Credits, r.Consumer = s.trigger, int32(s.opts.Concurrency), s.opts.Consumer
	})
	var loops sync.WaitGroup
	sendErr := make(chan error, 1)
	loops.Go(func() { sendErr <- s.sendLoop(sctx, stream) })
	inbox := make(chan *switchyardv1.PullResponse)
	recvErr := make(chan error, 1)
	loops.Go(func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case inbox <- resp:
			case <-sctx.Done():
				recvErr <- sctx.Err()
				return
			}
		}
	})
	var handlers sync.WaitGroup
	defer func() {
		for _, r := range s.running {
			r.cancel()
		}
		cancel()
		handlers.Wait()
		loops.Wait()
	}()

	extend := time.NewTimer(time.Hour)
	defer extend.Stop()
	var drain <-chan time.Time
	stop := ctx.Done()
	for {
		s.scheduleExtensions(extend)
		select {
		case resp := <-inbox:
			s.receive(sctx, resp, &handlers)
		case res := <-s.results:
			s.finished(res)
		case <-extend.C:
			s.extendLeases(time.Now())
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return err
		case err := <-sendErr:
			return err
		case <-stop:
			stop = nil
			s.stopping = true
			t := time.NewTimer(s.opts.DrainTimeout)
			defer t.Stop()
			drain = t.C
		case <-drain:
			drain = nil
			return s.finish(inbox, recvErr)
		}
		if s.stopping && drain != nil && len(s.running) == 0 {
			return s.finish(inbox, recvErr)
		}
	}
}

// finish ends a graceful stop: handlers still running are cancelled (their
// events are handed back when the stream ends), the answers queued are sent
// and the stream half-closed; it returns once the server ended the stream,
// which it does after recording every answer.
func (s *pullSession) finish(inbox <-chan *switchyardv1.PullResponse, recvErr <-chan error) error {
	for id, r := range s.running {
		r.cancel()
		delete(s.running, id)
	}
	s.out.close()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-inbox:
			// Sent before the server saw the half-close: what it leased
			// now is handed back when the stream ends.
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-t.C:
			return errors.New("switchyard: the server did not end the stream after the consumer closed its side")
		}
	}
}

// receive starts the events' handlers (or releases them when stopping) and
// applies lease updates.
func (s *pullSession) receive(ctx context.Context, resp *switchyardv1.PullResponse, handlers *sync.WaitGroup) {
	now := time.Now()
	for _, pe := range resp.GetEvents() {
		s.received = true
		if s.stopping {
			s.out.add(func(r *switchyardv1.PullRequest) {
				r.Answers = append(r.Answers, &switchyardv1.PullAnswer{DeliveryId: pe.GetDeliveryId(), Attempt: pe.GetAttempt(),
					Outcome: switchyardv1.PullOutcome_PULL_OUTCOME_RELEASE, Reason: "consumer stopping"})
			})
			continue
		}
		deadline := pe.GetLeaseDeadline().AsTime()
		info := function.Info{Attempt: int(pe.GetAttempt()), Trigger: pe.GetTrigger(), Deadline: deadline,
			IdempotencyKey: pe.GetIdempotencyKey(), Round: int(pe.GetRound())}
		hctx, cancel := context.WithCancel(function.NewContext(ctx, info))
		run := &pulledRun{ref: pe, cancel: cancel, arrived: now, deadline: deadline, length: deadline.Sub(now)}
		s.running[pe.GetDeliveryId()] = run
		handlers.Go(func() {
			defer cancel()
			a := s.handle(hctx, pe)
			s.results <- pullResult{id: pe.GetDeliveryId(), answer: a}
		})
	}
	for _, u := range resp.GetLeases() {
		r := s.running[u.GetDeliveryId()]
		if r == nil || r.ref.GetAttempt() != u.GetAttempt() {
			continue
		}
		r.asked = false
		if u.GetLeaseDeadline() == nil {
			// Lost: the event may be handed to another consumer.
			r.lost = true
			r.cancel()
			continue
		}
		r.deadline = u.GetLeaseDeadline().AsTime()
		r.length = r.deadline.Sub(now)
	}
}

// handle runs the handler and returns its answer.
func (s *pullSession) handle(ctx context.Context, pe *switchyardv1.PulledEvent) (a *switchyardv1.PullAnswer) {
	a = &switchyardv1.PullAnswer{DeliveryId: pe.GetDeliveryId(), Attempt: pe.GetAttempt()}
	ev, err := function.FromProto(pe.GetEvent())
	if err != nil {
		a.Outcome, a.Reason = switchyardv1.PullOutcome_PULL_OUTCOME_DEAD, "cannot decode event: "+err.Error()
		return a
	}
	defer func() {
		if p := recover(); p != nil {
			s.opts.Logger.Error("switchyard: pull handler panicked", "panic", fmt.Sprint(p), "event_id", ev.ID(),
				"event_source", ev.Source(), "trigger", s.trigger, "stack", string(debug.Stack()))
			a.Outcome, a.RetryAfter, a.Code = switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, nil, int32(codes.Internal)
			a.Reason = fmt.Sprintf("handler panicked: %v", p)
		}
	}()
	answerOf(a, s.h(ctx, ev))
	return a
}

// answerOf fills a with the outcome err stands for (see PullHandler).
func answerOf(a *switchyardv1.PullAnswer, err error) {
	var rel *ReleaseError
	var dead *function.DeadError
	var retry *function.RetryError
	var st interface{ GRPCStatus() *status.Status }
	switch {
	case err == nil:
		a.Outcome = switchyardv1.PullOutcome_PULL_OUTCOME_ACK
	case errors.As(err, &rel):
		a.Outcome, a.Reason = switchyardv1.PullOutcome_PULL_OUTCOME_RELEASE, err.Error()
	case errors.As(err, &dead):
		a.Outcome, a.Reason = switchyardv1.PullOutcome_PULL_OUTCOME_DEAD, err.Error()
	case errors.As(err, &retry):
		a.Outcome, a.Reason = switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, err.Error()
		if retry.After > 0 {
			a.RetryAfter = durationpb.New(retry.After)
		}
	case errors.As(err, &st) && st.GRPCStatus() != nil && st.GRPCStatus().Code() != codes.OK:
		a.Outcome, a.Reason, a.Code = switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, st.GRPCStatus().Message(), int32(st.GRPCStatus().Code())
	default:
		a.Outcome, a.Reason = switchyardv1.PullOutcome_PULL_OUTCOME_RETRY, err.Error()
	}
}

// finished sends a handler's answer (unless its lease was lost or the stop
// already gave it up) and, unless stopping, grants its slot again.
func (s *pullSession) finished(res pullResult) {
	r := s.running[res.id]
	if r == nil {
		return // cancelled by finish: its event is handed back
	}
	delete(s.running, res.id)
	s.out.add(func(req *switchyardv1.PullRequest) {
		if !r.lost {
			req.Answers = append(req.Answers, res.answer)
		}
		if !s.stopping {
			req.Credits++
		}
	})
}

// scheduleExtensions sets the timer for the next lease to extend.
func (s *pullSession) scheduleExtensions(t *time.Timer) {
	t.Stop()
	if s.opts.MaxLeaseExtension < 0 {
		return
	}
	var next time.Time
	for _, r := range s.running {
		if r.asked || r.lost {
			continue
		}
		at := r.deadline.Add(-r.length / 3)
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if !next.IsZero() {
		t.Reset(max(time.Until(next), time.Millisecond))
	}
}

// extendLeases asks for more time for the handlers whose lease runs out
// within a third of its length, within MaxLeaseExtension.
func (s *pullSession) extendLeases(now time.Time) {
	var exts []*switchyardv1.LeaseExtension
	for _, r := range s.running {
		if r.asked || r.lost || now.Before(r.deadline.Add(-r.length/3)) {
			continue
		}
		if now.Sub(r.arrived) >= s.opts.MaxLeaseExtension {
			// Out of budget: the lease runs out, the handler's context is
			// cancelled when Switchyard says it is lost.
			r.asked = true
			continue
		}
		r.asked = true
		exts = append(exts, &switchyardv1.LeaseExtension{DeliveryId: r.ref.GetDeliveryId(), Attempt: r.ref.GetAttempt()})
	}
	if len(exts) > 0 {
		s.out.add(func(req *switchyardv1.PullRequest) { req.Extensions = append(req.Extensions, exts...) })
	}
}
