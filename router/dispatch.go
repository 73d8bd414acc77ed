package router

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/panics"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// dispatcher delivers one trigger's queue from this instance. It claims
// attempts only while it has free slots (the trigger's max_concurrency; the
// store enforces the same limit across instances), so a stalled target holds
// at most that many events in memory: the backlog stays in Redis.
type dispatcher struct {
	r    *Router
	name string
	log  *slog.Logger // the router's, with the trigger's name
	trig atomic.Pointer[trigger.Trigger]

	wakeCh   chan struct{}
	doneCh   chan struct{}
	stopOnce sync.Once
	loopDone chan struct{}

	series   *triggerSeries           // the trigger's metrics
	ep       atomic.Pointer[endpoint] // the delivery endpoint of trig (see endpoint.go)
	inflight atomic.Int64
	compMu   sync.Mutex
	// deferredSince is when the claim loop began waiting for more free
	// slots (zero when not waiting); only the claim loop uses it.
	deferredSince time.Time
	completing    bool // the completer goroutine runs (see ensureCompleter)
	// moreWork is set when claiming stopped for want of free slots while
	// work was waiting: a completion then wakes the claim loop. Otherwise
	// completions do not, and new work wakes it (fan-out, timers, sweep).
	moreWork atomic.Bool
	results  chan outcome
	drain    drainMeter // completions per second, for pushback delays
}

// outcome is a finished attempt waiting to be recorded.
type outcome struct {
	item   store.Claimed
	ev     *pb.CloudEvent // item.Event decoded, once needed: see event
	res    delivery.Result
	noTry  bool // the event died before an attempt (too old, unreadable)
	reason switchyardv1.DeadLetterReason
	detail string
	// refused are the function's replies that were not published (invalid,
	// over the hop limit): the acknowledgement carries them to the DLQ.
	refused []refusedReply
}

// event returns the stored event, decoding it on first use: an attempt to a
// gRPC target that succeeds needs only the stored bytes. An unreadable event
// decodes in part, which is enough for logs.
func (o *outcome) event() *pb.CloudEvent {
	if o.ev == nil {
		o.ev = &pb.CloudEvent{}
		_ = proto.Unmarshal(o.item.Event, o.ev)
	}
	return o.ev
}

func newDispatcher(r *Router, t *trigger.Trigger) *dispatcher {
	d := &dispatcher{
		r: r, name: t.Name(), series: r.metrics.track(t.Name()), log: r.log.With("trigger", t.Name()),
		wakeCh:   make(chan struct{}, 1),
		doneCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
		// Attempts block on a full channel until the completer drains it
		// (blocked senders are taken in the same batch), so a small buffer
		// costs nothing but saves memory per trigger.
		results: make(chan outcome, 4),
	}
	d.trig.Store(t)
	return d
}

func (d *dispatcher) start() {
	d.r.wg.Add(1)
	d.r.claimLoops.Add(1)
	go func() {
		defer d.r.wg.Done()
		defer d.r.claimLoops.Done()
		defer close(d.loopDone)
		panics.Loop(d.r.intakeCtx, d.log, "router.dispatch", func(context.Context) { d.loop() })
	}()
	d.poke()
}

// claimDefer bounds how long a claim waits for more free slots.
const claimDefer = time.Millisecond

// ensureCompleter starts the completer unless it runs. The claim loop calls
// it before handing out attempts; the completer exits once no attempt is in
// flight for completerIdle, so an idle trigger costs one goroutine, not two.
func (d *dispatcher) ensureCompleter() {
	d.compMu.Lock()
	defer d.compMu.Unlock()
	if d.completing {
		return
	}
	d.completing = true
	d.r.wg.Add(1) // legal: the calling claim loop is counted in wg
	go func() {
		defer d.r.wg.Done()
		// Restarted after a panic until it returns: attempts wait for it.
		panics.Loop(context.Background(), d.log, "router.complete", func(context.Context) { d.completeLoop() })
	}()
}

// completerDone ends the completer if no attempt is in flight (the claim
// loop adds to inflight before it calls ensureCompleter).
func (d *dispatcher) completerDone() bool {
	d.compMu.Lock()
	defer d.compMu.Unlock()
	if d.inflight.Load() != 0 {
		return false
	}
	d.completing = false
	return true
}

// stop ends claiming; running attempts finish (bounded by the router's
// attempt context) and are recorded before the completer exits.
func (d *dispatcher) stop() { d.stopOnce.Do(func() { close(d.doneCh) }) }

// stopped reports whether the dispatcher was stopped.
func (d *dispatcher) stopped() bool {
	select {
	case <-d.doneCh:
		return true
	default:
		return false
	}
}

func (d *dispatcher) poke() {
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

func (d *dispatcher) loop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	ctx := d.r.intakeCtx
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.doneCh:
			return
		case <-d.wakeCh:
		case <-timer.C:
		}
		next := d.claim(ctx)
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// claimRequest is the claim for trigger t with inflight of its attempts
// running here: as many attempts as its max_concurrency leaves free (Want may
// be zero or less), at most the claim batch.
func (d *dispatcher) claimRequest(t *trigger.Trigger, inflight int64) store.ClaimRequest {
	pol := t.Spec.Delivery
	return store.ClaimRequest{
		Want:  int(min(int64(pol.MaxConcurrency)-inflight, int64(d.r.cfg.ClaimBatch))),
		Limit: pol.MaxConcurrency,
		Lease: pol.Timeout.Duration + d.r.cfg.LeaseGrace,
	}
}

// minClaim is the smallest claim worth its round trip while attempts are in
// flight: an eighth of max_concurrency, at most the claim batch, at least 1.
func (d *dispatcher) minClaim(t *trigger.Trigger) int {
	return max(1, min(d.r.cfg.ClaimBatch, t.Spec.Delivery.MaxConcurrency/8))
}

// claim starts as many attempts as there are free slots and work, and returns
// when it should look again at the latest (zero: only when woken).
func (d *dispatcher) claim(ctx context.Context) time.Time {
	panics.Hook("router.dispatch")
	r := d.r
	lastReady := int64(-1)
	for ctx.Err() == nil {
		t := d.trig.Load()
		inflight := d.inflight.Load()
		req := d.claimRequest(t, inflight)
		if req.Want <= 0 {
			// A completion wakes us if work is (or may be) waiting.
			d.moreWork.Store(lastReady != 0)
			return time.Time{}
		}
		// With attempts in flight and few free slots, wait a little for
		// more completions: a claim costs two round trips whatever its
		// size, and at full concurrency completions free slots a few at a
		// time. Never longer than claimDefer.
		if req.Want < d.minClaim(t) && inflight > 0 && lastReady != 0 {
			now := time.Now()
			if d.deferredSince.IsZero() {
				d.deferredSince = now
			}
			if until := d.deferredSince.Add(claimDefer); now.Before(until) {
				d.moreWork.Store(true)
				return until
			}
		}
		d.deferredSince = time.Time{}
		gen := r.backlog.gen(d.name)
		res, err := r.store.Claim(ctx, d.name, time.Now(), req.Want, req.Limit, req.Lease)
		if err != nil {
			if ctx.Err() == nil && r.logAllowed(d.name, "claim", "", "claim") {
				r.log.Warn("claim", "trigger", d.name, "err", err)
			}
			return time.Now().Add(time.Second)
		}
		r.backlog.observe(d.name, res.Held, gen)
		lastReady = res.Ready
		d.begin(t, res.Items)
		var next time.Time
		for _, tm := range []time.Time{res.NextDue, res.NextLease} {
			if !tm.IsZero() && (next.IsZero() || tm.Before(next)) {
				next = tm
			}
		}
		if res.Breaker == store.BreakerOpen && !res.BreakerUntil.IsZero() && res.Ready > 0 {
			if next.IsZero() || res.BreakerUntil.Before(next) {
				next = res.BreakerUntil
			}
		}
		if len(res.Items) < req.Want || res.Ready == 0 {
			d.moreWork.Store(false)
			return next
		}
	}
	return time.Time{}
}

// begin starts the attempts of claimed items (an expired lease is recorded
// as a lost attempt instead).
func (d *dispatcher) begin(t *trigger.Trigger, items []store.Claimed) {
	if len(items) == 0 {
		return
	}
	d.inflight.Add(int64(len(items)))
	d.ensureCompleter()
	for _, it := range items {
		d.r.attempts.Add(1)
		if it.Expired {
			d.lost(it)
		} else {
			d.r.workers.run(func() { d.attempt(t, it) })
		}
	}
}

// hopsName is HopsExtension as it appears in a stored event: an event
// without these bytes has no hop count, and is not decoded to learn it.
var hopsName = []byte(HopsExtension)

// hops returns the hop count o's delivery carries (the event's hop count
// plus one), or false when the delivery would pass MaxHops, or the
// event's count is unreadable: o is then a dead letter (HOP_LIMIT), not
// sent. An event looping through an HTTP target that posts it back to
// /events ends here. (A pull consumer gets the event as stored; the check
// holds for it too.)
func (d *dispatcher) hops(o *outcome) (int, bool) { return d.r.deliveryHops(o) }

// withinHops reports whether o's delivery stays within the hop limit (else
// o is made a HOP_LIMIT dead letter; see dispatcher.hops).
func (r *Router) withinHops(o *outcome) bool {
	_, ok := r.deliveryHops(o)
	return ok
}

// deliveryHops is dispatcher.hops for any delivery, a pull consumer's too.
func (r *Router) deliveryHops(o *outcome) (int, bool) {
	n := 0
	if bytes.Contains(o.item.Event, hopsName) {
		h, err := Hops(o.event())
		if err != nil {
			o.noTry, o.reason, o.detail = true, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, err.Error()
			return 0, false
		}
		n = h
	}
	if limit := r.cfg.MaxHops; n >= limit {
		o.noTry, o.reason = true, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT
		o.detail = fmt.Sprintf("this delivery would be hop %d, over the hop limit of %d: the event's %s is %d (it came back through Switchyard that often: a loop?)", n+1, limit, HopsExtension, n)
		return 0, false
	}
	return n + 1, true
}

// lost records an attempt whose instance disappeared mid-delivery.
func (d *dispatcher) lost(it store.Claimed) {
	d.results <- outcome{item: it, res: delivery.Result{
		Verdict: delivery.Retry, Code: "LEASE_EXPIRED",
		Message: "the instance running this attempt stopped answering before its lease ran out",
		Start:   time.Now(),
	}}
}

// attempt runs one attempt and hands its outcome to the completer. A panic
// while running it (a bug meeting some event or answer) is recovered and
// ends the attempt as a retryable failure, so the event is tried again and,
// should it panic every time, dead-lettered after max_attempts: no event
// can stop the process.
func (d *dispatcher) attempt(t *trigger.Trigger, it store.Claimed) {
	var o outcome
	if panics.Run(d.log, "router.attempt", func() { o = d.run(t, it) }) {
		d.log.Warn("attempt ended by a panic; it is retried", "queue_id", it.ID, "attempt", it.Attempt)
		o = outcome{item: it, res: delivery.Result{Verdict: delivery.Retry, Code: "INTERNAL",
			Message: "switchyard failed while running this attempt (logged with its stack); it is retried", Start: time.Now()}}
	}
	d.results <- o
}

// run runs one attempt and returns its outcome.
func (d *dispatcher) run(t *trigger.Trigger, it store.Claimed) outcome {
	panics.Hook("router.attempt")
	r := d.r
	o := outcome{item: it}
	// Checked, not decoded: gRPC targets get the stored bytes as they are.
	key, err := delivery.ScanEvent(it.Event)
	if err != nil {
		o.noTry, o.reason, o.detail = true, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE, "stored event is unreadable: "+err.Error()
		return o
	}
	pol := t.Spec.Delivery
	born := it.Born()
	if !born.IsZero() && time.Since(born) > pol.MaxEventAge.Duration {
		o.noTry, o.reason = true, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_AGE
		o.detail = "event older than max_event_age " + pol.MaxEventAge.String() + " before its attempt"
		return o
	}
	hops, ok := d.hops(&o)
	if !ok {
		return o
	}
	ep := d.endpoint(t)
	a := &delivery.Attempt{
		Trigger: d.name, GRPC: ep.grpc, URL: t.Spec.Target.URL, Endpoint: ep.ep,
		Raw: it.Event, Key: key, Number: it.Attempt, Round: replayRound(it), Timeout: pol.Timeout.Duration,
		Hops: hops,
	}
	if a.GRPC == "" {
		a.Event = o.event()
	}
	ctx := r.attemptCtx
	var span trace.Span
	if r.tr != nil {
		ctx, span = r.tr.startAttempt(ctx, d.name, it, a)
	}
	res := r.invoker.Invoke(ctx, a)
	firstWait := time.Duration(-1) // not a first attempt
	if !born.IsZero() && it.Attempt == 1 && it.History == nil {
		firstWait = max(0, res.Start.Sub(born))
	}
	r.metrics.observeAttempt(ctx, d.series, res.Duration, firstWait)
	if res.Verdict == delivery.Ack && len(res.Replies) > 0 {
		refused, err := r.publishReplies(ctx, o.event(), res.Replies)
		if err != nil {
			// The store could not take the replies now (unreachable, the
			// replies' trigger pushing back, stopping). They exist nowhere
			// else, so acknowledging would lose them: the attempt is
			// retried, and the function runs again. Replies that can never
			// be published are not errors; they come back in refused.
			res = delivery.Result{Verdict: delivery.Retry, Code: "REPLY_REFUSED", Message: "the function's reply events could not be published: " + err.Error(), Start: res.Start, Duration: res.Duration}
		}
		o.refused = refused
	}
	if span != nil {
		r.tr.endAttempt(span, t, it, a, res)
	}
	o.res = res
	return o
}
