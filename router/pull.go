package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// Pull triggers (target `pull: {}`) have no dispatcher: their events wait in
// the queue until a Consumer claims them. A Consumer is one consumer's
// stream on this instance (the server's PullService runs one per stream):
//
//	Consume ─▶ Grant(credits) ─▶ Next: claim (≤ credits, ≤ max_concurrency
//	cluster-wide, the claim script of push triggers) ─▶ leased events
//	      ◀── Answer (ack / retry / dead: the completion scripts, as for a
//	          function; release: releaseScript) · Extend (extendScript)
//	      ◀── Close: the events still leased are handed back
//
// The attempt counting of push delivery holds unchanged: the claim numbers
// the attempt in Redis, a late or unknown answer is ignored, a lease (the
// trigger's timeout, plus LeaseGrace in Redis) that runs out is recorded as
// a failed attempt with code LEASE_EXPIRED by the consumer's instance (by
// whichever instance claims next when that one died) and retried after the
// trigger's backoff. Two hand-backs are exact in different ways:
//
//   - Release (the consumer says it did not start on the event, e.g. the
//     SDK stopping with events received but not given to a handler): the
//     attempt did not happen; its number is given again to the next one and
//     the event goes back to the head of the queue at once.
//   - Close with events still leased (the stream ended: the consumer went
//     away, or the server is stopping): each may have run, so the attempt
//     counts (code STREAM_ENDED in the history, dead-lettered when it was
//     the last allowed) and the event is ready again at once, not after a
//     backoff: nothing says the event is at fault.
//
// Pull triggers have no circuit breaker: a consumer's failures say nothing
// about a target's health, and pausing every consumer for one's failures
// would starve the others.

// Codes recorded in the history of pulled attempts that ended without an
// answer.
const (
	// CodeLeaseExpired: the lease ran out before the consumer answered or
	// extended it.
	CodeLeaseExpired = "LEASE_EXPIRED"
	// CodeStreamEnded: the consumer's stream ended before it answered.
	CodeStreamEnded = "STREAM_ENDED"
)

// Limits of the pull protocol.
const (
	// MaxPullCredits bounds the credits a consumer may hold unused.
	MaxPullCredits = 1_000_000
	// MaxLeaseExtension bounds one lease extension.
	MaxLeaseExtension = trigger.MaxTimeout
	// maxReasonBytes bounds the reason kept from a consumer's answer.
	maxReasonBytes = 1024
	// consumerRenew is how often a consumer renews its registry entry; it
	// expires after three renewals missed.
	consumerRenew = 5 * time.Second
)

// ErrNotPullTrigger refuses a consumer of a trigger whose target is not
// pull, and ends one whose trigger changed to another target.
var ErrNotPullTrigger = errors.New("not a pull trigger (target: {pull: {}})")

// ErrConsumerClosed is returned by Next once the consumer is closed.
var ErrConsumerClosed = errors.New("consumer closed")

// PullOutcome is a consumer's answer to one attempt.
type PullOutcome int

// The answers of a consumer (see switchyard.v1.PullOutcome).
const (
	PullAck PullOutcome = iota + 1
	PullRetry
	PullDead
	PullRelease
)

// Answer is a consumer's answer to one attempt it holds.
type Answer struct {
	store.AttemptRef
	Outcome PullOutcome
	// RetryAfter is the least delay before the next attempt (PullRetry).
	RetryAfter time.Duration
	// Reason is recorded in the history (PullRetry, PullDead).
	Reason string
	// Code, when not OK, is the gRPC code of the consumer's failure
	// (PullRetry): classified as a function's code is.
	Code codes.Code
}

// LeaseRequest asks to extend the lease of an attempt a consumer holds.
type LeaseRequest struct {
	store.AttemptRef
	// By is how long the new lease runs from now; 0: the trigger's timeout.
	// At most MaxLeaseExtension.
	By time.Duration
}

// LeaseUpdate reports a lease extended (Deadline set) or lost (zero
// Deadline: it ran out, or the attempt is no longer current).
type LeaseUpdate struct {
	store.AttemptRef
	Deadline time.Time
}

// Leased is one attempt handed to a consumer.
type Leased struct {
	// ID names the event in the trigger's queue (the delivery id).
	ID      string
	Attempt int
	// Event is the stored io.cloudevents.v1.CloudEvent.
	Event []byte
	// Deadline is when the lease runs out.
	Deadline time.Time
	// Key is the idempotency key (source and id); Round the event's life
	// (see InvokeRequest.round).
	Key   string
	Round int
}

// Pulled is what Next hands to the consumer's sender.
type Pulled struct {
	Events []Leased
	Leases []LeaseUpdate
}

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// Name is shown in logs and in the consumer registry ("" is allowed).
	Name string
}

// Consumer is one pull consumer of a trigger on this instance. Next is
// called by one goroutine (the stream's sender); Grant, Answer, Extend and
// Drain by another (its receiver); Close once both are done. Close must be
// called: until then the router's Shutdown waits for it.
type Consumer struct {
	r    *Router
	hub  *pullHub
	name string // the trigger
	id   string // entry in the registry: instance/sequence/name
	poke chan struct{}

	mu       sync.Mutex
	credits  int
	leases   map[string]*pullLease // by event id
	updates  []LeaseUpdate         // for Next to send
	claimNow bool                  // something may be claimable: claim at the next chance
	check    time.Time             // claim at this time even without credits (due retries, lost leases)
	draining bool                  // claim no more
	closed   bool
	renewAt  time.Time
}

type pullLease struct {
	item     store.Claimed
	deadline time.Time
	start    time.Time
}

// pullHubs tracks the pull triggers that have consumers on this instance.
type pullHubs struct {
	mu   sync.Mutex
	hubs map[string]*pullHub
	seq  uint64
}

// pullHub is a pull trigger's consumers on this instance, and the recorder
// of their outcomes.
type pullHub struct {
	name string
	// rec records outcomes with the dispatcher's decisions and writes
	// (complete.go: decide, record, write) and measures the drain rate
	// that pushback delays come from. It is never started: no claim loop,
	// no completer.
	rec       *dispatcher
	consumers map[*Consumer]struct{} // guarded by pullHubs.mu
}

// Consume opens a consumer of the pull trigger name on this instance.
// Errors: store.ErrNotFound (no such trigger here), ErrNotPullTrigger,
// ErrStopping, ErrUnavailable (the consumer registry cannot be written).
func (r *Router) Consume(ctx context.Context, name string, cfg ConsumerConfig) (*Consumer, error) {
	t := r.Trigger(name)
	if t == nil {
		return nil, fmt.Errorf("trigger %q: %w", name, store.ErrNotFound)
	}
	if !t.Spec.Target.IsPull() {
		return nil, fmt.Errorf("trigger %q: %w", name, ErrNotPullTrigger)
	}
	r.mu.Lock()
	if r.stopping.Load() {
		r.mu.Unlock()
		return nil, ErrStopping
	}
	// Counted with the claim loops: Shutdown waits for every consumer to
	// be closed, so none claims or records after the store is gone.
	r.claimLoops.Add(1)
	r.mu.Unlock()
	c := &Consumer{r: r, name: name, poke: make(chan struct{}, 1), leases: map[string]*pullLease{}}
	r.pulls.mu.Lock()
	if r.pulls.hubs == nil {
		r.pulls.hubs = map[string]*pullHub{}
	}
	h := r.pulls.hubs[name]
	if h == nil {
		h = &pullHub{name: name, rec: newDispatcher(r, t), consumers: map[*Consumer]struct{}{}}
		r.pulls.hubs[name] = h
	}
	h.consumers[c] = struct{}{}
	r.pulls.seq++
	c.id = r.cfg.InstanceID + "/" + strconv.FormatUint(r.pulls.seq, 10) + "/" + cfg.Name
	r.pulls.mu.Unlock()
	c.hub = h
	now := time.Now()
	c.renewAt = now.Add(consumerRenew)
	if err := r.store.RenewConsumers(ctx, name, []string{c.id}, now, now.Add(3*consumerRenew)); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return c, nil
}

// pokePull wakes the consumers of a pull trigger on this instance: their
// queue may have work (new events, due retries), a change of the trigger to
// look at, or free slots.
func (r *Router) pokePull(name string) {
	r.pulls.mu.Lock()
	if h := r.pulls.hubs[name]; h != nil {
		for c := range h.consumers {
			c.wake(true)
		}
	}
	r.pulls.mu.Unlock()
}

// pullDrainRate is the rate at which this instance's consumers of a pull
// trigger complete attempts, for pushback delays; 0 when unknown.
func (r *Router) pullDrainRate(name string) float64 {
	r.pulls.mu.Lock()
	h := r.pulls.hubs[name]
	r.pulls.mu.Unlock()
	if h == nil {
		return 0
	}
	return h.rec.drain.perSecond(time.Now())
}

func (c *Consumer) wake(claim bool) {
	if claim {
		c.mu.Lock()
		c.claimNow = true
		c.mu.Unlock()
	}
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// ID names the consumer in logs and in the registry.
func (c *Consumer) ID() string { return c.id }

// Grant adds credits: Next sends at most that many more events.
func (c *Consumer) Grant(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.credits = min(c.credits+n, MaxPullCredits)
	c.mu.Unlock()
	c.wake(true)
}

// Drain stops claiming: Next sends lease updates only, while the attempts
// leased are answered.
func (c *Consumer) Drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.wake(false)
}

// Leased counts the attempts the consumer holds.
func (c *Consumer) Leased() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.leases)
}

// trigger returns the consumer's trigger, or the error that ends the
// consumer: it was deleted, or changed to another target.
func (c *Consumer) trigger() (*trigger.Trigger, error) {
	t := c.r.Trigger(c.name)
	switch {
	case t == nil:
		return nil, fmt.Errorf("trigger %q: %w", c.name, store.ErrNotFound)
	case !t.Spec.Target.IsPull():
		return nil, fmt.Errorf("trigger %q: %w", c.name, ErrNotPullTrigger)
	}
	c.hub.rec.trig.Store(t)
	return t, nil
}

// Next waits for events to send (as many as credits allow) or lease updates,
// and returns them. It ends with ctx's error, ErrStopping when the router
// stops, ErrConsumerClosed, or the trigger's end (see trigger).
func (c *Consumer) Next(ctx context.Context) (Pulled, error) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return Pulled{}, err
		}
		if c.r.intakeCtx.Err() != nil {
			return Pulled{}, ErrStopping
		}
		t, err := c.trigger()
		if err != nil {
			return Pulled{}, err
		}
		now := time.Now()
		c.expire(t, now)
		events := c.claim(ctx, t, now)
		c.renew(ctx, now)

		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return Pulled{}, ErrConsumerClosed
		}
		out := Pulled{Events: events, Leases: c.updates}
		c.updates = nil
		wait := time.Until(c.renewAt)
		for _, l := range c.leases {
			wait = min(wait, time.Until(l.deadline))
		}
		if !c.check.IsZero() {
			wait = min(wait, time.Until(c.check))
		}
		c.mu.Unlock()
		if len(out.Events) > 0 || len(out.Leases) > 0 {
			return out, nil
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-c.poke:
		case <-timer.C:
		case <-ctx.Done():
		case <-c.r.intakeCtx.Done():
		}
		timer.Stop()
	}
}

// expire ends the leases whose deadline passed: each attempt is recorded as
// failed (LEASE_EXPIRED, retried after the backoff) and the consumer told.
func (c *Consumer) expire(t *trigger.Trigger, now time.Time) {
	var lost []outcome
	c.mu.Lock()
	for id, l := range c.leases {
		if now.Before(l.deadline) {
			continue
		}
		delete(c.leases, id)
		c.updates = append(c.updates, LeaseUpdate{AttemptRef: l.item.AttemptRef()})
		lost = append(lost, outcome{item: l.item, res: delivery.Result{
			Verdict: delivery.Retry, Code: CodeLeaseExpired, Start: l.start, Duration: now.Sub(l.start),
			Message: "the consumer neither answered nor extended its lease of " + t.Spec.Delivery.Timeout.String() + " in time",
		}})
	}
	c.mu.Unlock()
	if len(lost) > 0 {
		c.hub.record(c.r, lost)
	}
}

// claim claims as many attempts as the consumer has credits (at most a
// claim batch) when something may be claimable, and returns those to send.
// A claim also runs without credits when a scheduled retry falls due or
// another instance's lease runs out, so that those are taken care of.
func (c *Consumer) claim(ctx context.Context, t *trigger.Trigger, now time.Time) []Leased {
	r := c.r
	c.mu.Lock()
	want := 0
	if !c.draining && c.claimNow {
		want = min(c.credits, r.cfg.ClaimBatch)
	}
	due := !c.check.IsZero() && !now.Before(c.check)
	if want <= 0 && !due {
		c.claimNow = c.claimNow && !c.draining
		c.mu.Unlock()
		return nil
	}
	c.claimNow, c.check = false, time.Time{}
	c.mu.Unlock()

	pol := t.Spec.Delivery
	gen := r.backlog.gen(c.name)
	res, err := r.store.Claim(ctx, c.name, now, want, pol.MaxConcurrency, pol.Timeout.Duration+r.cfg.LeaseGrace)
	if err != nil {
		if ctx.Err() == nil && r.intakeCtx.Err() == nil {
			r.log.Warn("pull claim", "trigger", c.name, "consumer", c.id, "err", err)
		}
		c.mu.Lock()
		c.check, c.claimNow = now.Add(time.Second), want > 0
		c.mu.Unlock()
		return nil
	}
	r.backlog.observe(c.name, res.Held, gen)
	var failed []outcome
	var out []Leased
	leases := make([]*pullLease, 0, len(res.Items))
	started := 0
	for _, it := range res.Items {
		if it.Expired { // another instance's consumer lost it
			failed = append(failed, outcome{item: it, res: delivery.Result{
				Verdict: delivery.Retry, Code: CodeLeaseExpired, Start: now,
				Message: "the instance serving this attempt's consumer stopped answering before its lease ran out",
			}})
			continue
		}
		started++
		key, err := delivery.ScanEvent(it.Event)
		if err != nil {
			failed = append(failed, outcome{item: it, noTry: true, reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE,
				detail: "stored event is unreadable: " + err.Error()})
			continue
		}
		born := it.Born()
		if !born.IsZero() && now.Sub(born) > pol.MaxEventAge.Duration {
			failed = append(failed, outcome{item: it, noTry: true, reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_AGE,
				detail: "event older than max_event_age " + pol.MaxEventAge.String() + " before its attempt"})
			continue
		}
		if o := (outcome{item: it}); !r.withinHops(&o) {
			failed = append(failed, o) // dead-lettered: HOP_LIMIT
			continue
		}
		l := &pullLease{item: it, start: now, deadline: now.Add(pol.Timeout.Duration)}
		leases = append(leases, l)
		out = append(out, Leased{ID: it.ID, Attempt: it.Attempt, Event: it.Event, Deadline: l.deadline, Key: key, Round: replayRound(it)})
	}
	c.mu.Lock()
	if c.closed {
		// Closed while claiming: nothing was sent, so nothing happened.
		c.mu.Unlock()
		refs := make([]store.AttemptRef, len(leases))
		for i, l := range leases {
			refs[i] = l.item.AttemptRef()
		}
		c.release(refs)
		c.hub.record(r, failed)
		return nil
	}
	for _, l := range leases {
		c.leases[l.item.ID] = l
	}
	c.credits -= len(leases)
	// Claim again at once while the queue has more and every slot asked
	// for was granted; else a completion, new work or the sweep wakes us,
	// or the next due retry or lease.
	c.claimNow = want > 0 && started >= want && res.Ready > 0
	for _, tm := range []time.Time{res.NextDue, res.NextLease} {
		if !tm.IsZero() && (c.check.IsZero() || tm.Before(c.check)) {
			c.check = tm
		}
	}
	c.mu.Unlock()
	if len(failed) > 0 {
		c.hub.record(r, failed)
	}
	return out
}

// renew renews the consumer's registry entry when it is due.
func (c *Consumer) renew(ctx context.Context, now time.Time) {
	c.mu.Lock()
	due := !now.Before(c.renewAt)
	if due {
		c.renewAt = now.Add(consumerRenew)
	}
	c.mu.Unlock()
	if due {
		if err := c.r.store.RenewConsumers(ctx, c.name, []string{c.id}, now, now.Add(3*consumerRenew)); err != nil && ctx.Err() == nil {
			c.r.log.Warn("renew pull consumer", "trigger", c.name, "consumer", c.id, "err", err)
		}
	}
}

// Answer records the consumer's answers. An answer for an attempt the
// consumer does not hold (answered before, its lease lost, unknown) is
// ignored and counted in stale. It returns once the answers are recorded
// (retrying while the store is unreachable, until the router stops).
func (c *Consumer) Answer(answers []Answer) (stale int) {
	if len(answers) == 0 {
		return 0
	}
	now := time.Now()
	var outs []outcome
	var released []store.AttemptRef
	c.mu.Lock()
	for _, a := range answers {
		l := c.leases[a.ID]
		if l == nil || l.item.Attempt != a.Attempt {
			stale++
			continue
		}
		delete(c.leases, a.ID)
		if a.Outcome == PullRelease {
			released = append(released, a.AttemptRef)
			continue
		}
		outs = append(outs, outcome{item: l.item, res: answerResult(a, l.start, now)})
	}
	c.mu.Unlock()
	if stale > 0 {
		c.hub.rec.series.add(cStale, float64(stale))
	}
	c.release(released)
	c.hub.record(c.r, outs)
	if len(outs)+len(released) > 0 {
		// Slots are free: the consumers here may claim again.
		c.r.pokePull(c.name)
	}
	return stale
}

// answerResult is the attempt's result as the consumer answered it.
func answerResult(a Answer, start, now time.Time) delivery.Result {
	res := delivery.Result{Start: start, Duration: now.Sub(start), Message: truncateUTF8(a.Reason, maxReasonBytes)}
	switch a.Outcome {
	case PullAck:
		res.Verdict, res.Code = delivery.Ack, "OK"
	case PullDead:
		res.Verdict, res.Code, res.Reason = delivery.DeadNow, "DEAD", switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REJECTED
	default: // PullRetry
		res.Verdict, res.Code, res.RetryAfter = delivery.Retry, "RETRY", max(a.RetryAfter, 0)
		if a.Code != codes.OK {
			// Classified as a function's status is; the health half of
			// the verdict is dropped: pull triggers have no breaker.
			v, _ := delivery.ClassifyCode(a.Code)
			res.Verdict, res.Code = v, delivery.CodeName(a.Code)
			if v == delivery.DeadNow {
				res.Reason = switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_NON_RETRYABLE
			}
		}
	}
	return res
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// release hands attempts back uncounted (see store.Release); when the store
// cannot take it, the leases expire and count instead.
func (c *Consumer) release(refs []store.AttemptRef) {
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.r.attemptCtx, 10*time.Second)
	defer cancel()
	if _, err := c.r.store.Release(ctx, c.name, refs); err != nil {
		c.r.log.Warn("release pulled attempts; their leases will expire and count as attempts", "trigger", c.name, "count", len(refs), "err", err)
		return
	}
	c.r.Wake(c.name)
}

// Extend extends the leases asked for and queues a LeaseUpdate for each
// (Next sends them): the new deadline, or none when the lease is lost.
func (c *Consumer) Extend(ctx context.Context, reqs []LeaseRequest) {
	if len(reqs) == 0 {
		return
	}
	t := c.hub.rec.trig.Load()
	now := time.Now()
	var exts []store.Extension
	var deadlines []time.Time
	c.mu.Lock()
	for _, q := range reqs {
		l := c.leases[q.ID]
		if l == nil || l.item.Attempt != q.Attempt {
			c.updates = append(c.updates, LeaseUpdate{AttemptRef: q.AttemptRef})
			continue
		}
		by := q.By
		if by <= 0 {
			by = t.Spec.Delivery.Timeout.Duration
		}
		by = min(by, MaxLeaseExtension)
		exts = append(exts, store.Extension{AttemptRef: q.AttemptRef, Until: now.Add(by + c.r.cfg.LeaseGrace)})
		deadlines = append(deadlines, now.Add(by))
	}
	c.mu.Unlock()
	ok, err := c.r.store.ExtendLeases(ctx, c.name, exts)
	if err != nil {
		// The leases stand as they were; the consumer may ask again.
		if ctx.Err() == nil {
			c.r.log.Warn("extend pulled leases", "trigger", c.name, "consumer", c.id, "err", err)
		}
		c.wake(false)
		return
	}
	c.mu.Lock()
	for i, e := range exts {
		l := c.leases[e.ID]
		if l == nil || l.item.Attempt != e.Attempt {
			continue // answered or expired meanwhile
		}
		if ok[i] {
			l.deadline = deadlines[i]
			c.updates = append(c.updates, LeaseUpdate{AttemptRef: e.AttemptRef, Deadline: l.deadline})
		} else {
			// Another instance took the attempt over: nothing to record.
			delete(c.leases, e.ID)
			c.updates = append(c.updates, LeaseUpdate{AttemptRef: e.AttemptRef})
		}
	}
	c.mu.Unlock()
	c.wake(false)
}

// Close ends the consumer: the attempts it still holds are recorded as
// failed (STREAM_ENDED) and their events made ready again at once, and it
// leaves the registry. Call it once Next no longer runs. Safe to call more
// than once.
func (c *Consumer) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	held := make([]*pullLease, 0, len(c.leases))
	for _, l := range c.leases {
		held = append(held, l)
	}
	c.leases = map[string]*pullLease{}
	c.mu.Unlock()
	r := c.r
	if len(held) > 0 {
		c.hub.handBack(r, held)
		r.Wake(c.name)
	}
	ctx, cancel := context.WithTimeout(r.attemptCtx, 2*time.Second)
	if err := r.store.RemoveConsumer(ctx, c.name, c.id); err != nil && r.attemptCtx.Err() == nil {
		r.log.Warn("remove pull consumer from the registry; its entry expires", "trigger", c.name, "consumer", c.id, "err", err)
	}
	cancel()
	r.pulls.mu.Lock()
	delete(c.hub.consumers, c)
	if len(c.hub.consumers) == 0 && r.pulls.hubs[c.name] == c.hub {
		delete(r.pulls.hubs, c.name)
	}
	r.pulls.mu.Unlock()
	r.pokePull(c.name) // slots freed
	r.claimLoops.Done()
}

// record writes outcomes of pulled attempts with the dispatcher's decisions
// (complete.go), retrying while the store is unreachable until the router's
// hard stop.
func (h *pullHub) record(r *Router, outs []outcome) {
	if len(outs) == 0 {
		return
	}
	h.rec.record(outs)
	h.rec.drain.add(len(outs), time.Now())
}

// handBack records attempts whose consumer's stream ended unanswered: each
// counts (STREAM_ENDED) and its event is ready again at once, or
// dead-lettered when it was the last attempt allowed (or too old).
func (h *pullHub) handBack(r *Router, held []*pullLease) {
	t := h.rec.trig.Load()
	now := time.Now()
	var retries []store.Retry
	var deads []store.Dead
	for _, l := range held {
		o := outcome{item: l.item, res: delivery.Result{
			Verdict: delivery.Retry, Code: CodeStreamEnded, Start: l.start, Duration: now.Sub(l.start),
			Message: "the consumer's stream ended before it answered",
		}}
		rt, dl := h.rec.decide(o, t, now)
		if rt != nil {
			rt.Due = now // the consumer went away: nothing says the event is at fault
			retries = append(retries, *rt)
			h.rec.series.add(cRetry, 1)
		}
		if dl != nil {
			deads = append(deads, *dl)
			h.rec.series.add(cDead, 1)
		}
	}
	var wait time.Duration
	for {
		ctx, cancel := context.WithTimeout(r.attemptCtx, 10*time.Second)
		err := h.rec.write(ctx, now, store.Breaker{}, new([]store.AttemptRef), new([]store.LetteredAck), &retries, &deads)
		cancel()
		if err == nil {
			h.rec.drain.add(len(held), time.Now())
			return
		}
		if r.attemptCtx.Err() != nil {
			r.log.Warn("pulled attempts not handed back before stop; their leases will expire and the events be retried", "trigger", h.name, "count", len(held), "err", err)
			return
		}
		wait = nextBackoff(wait)
		r.log.Warn("hand back pulled attempts", "trigger", h.name, "err", err, "retry_in", wait)
		backoffSleep(r.attemptCtx, wait)
	}
}
