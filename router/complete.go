package router

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/internal/panics"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// completeLoop records finished attempts in batches: whatever finished while
// the previous batch was being written goes in the next one, so a busy
// trigger pays one round trip per batch, not per event.
func (d *dispatcher) completeLoop() {
	const maxBatch = 256
	var batch []outcome // allocated on first use
	idle := time.NewTimer(completerIdle)
	defer idle.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		var o outcome
		select {
		case o = <-d.results:
		case <-idle.C:
			if d.completerDone() {
				return
			}
			idle.Reset(completerIdle)
			continue
		case <-d.loopDone:
			if d.completerDone() {
				return
			}
			o = <-d.results
		}
		batch = append(batch[:0], o)
	drain:
		for len(batch) < maxBatch {
			select {
			case o := <-d.results:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		if n := d.lingerMax(); len(batch) < n {
			batch = d.linger(batch, n, linger)
		}
		var refilled bool
		// A panic while recording leaves the batch unrecorded: its leases
		// expire and the events are tried again. The books stay right.
		panics.Run(d.log, "router.record", func() { refilled = d.record(batch) })
		d.drain.add(len(batch), time.Now())
		d.inflight.Add(-int64(len(batch)))
		d.finished.Add(-int64(len(batch)))
		d.r.attempts.Add(-len(batch))
		if !refilled && d.moreWork.Load() {
			d.poke()
		}
		idle.Reset(completerIdle)
	}
}

// completerIdle is how long the completer waits with nothing in flight
// before it exits.
const completerIdle = 5 * time.Second

// The completer lingers: it holds a small batch of outcomes up to
// Config.AckLinger for more to join it. Below saturation attempts finish
// one at a time, and recording each in a round trip of its own was the
// largest part of what an event cost the server and Redis at ordinary
// rates (issue 11); at saturation batches fill without waiting. Holding an
// outcome changes nothing a publisher or function sees: the event stays
// stored and leased until recorded (a crash meanwhile redelivers it, as
// before), the attempts held do not count as running for the publishers'
// claims (dispatcher.finished), and lingering stops as soon as a claim
// waits for slots or the dispatcher stops.

// lingerMax is how many outcomes a batch may gather while it lingers; a
// batch that holds as many is recorded at once. It is 0, no lingering,
// while the claim loop waits for free slots (moreWork), the dispatcher
// stops or AckLinger is negative, and 1 for a trigger of fewer than 16
// slots: the slots held meanwhile are never more than a batched claim's
// (minClaim).
func (d *dispatcher) lingerMax() int {
	if d.r.cfg.AckLinger <= 0 || d.moreWork.Load() || d.stopped() || d.r.intakeCtx.Err() != nil {
		return 0
	}
	return d.minClaim(d.trig.Load())
}

// linger adds outcomes to batch until it holds n, AckLinger passed, slots
// are wanted or the claim loop ended; t is the completer's timer for it
// (stopped).
func (d *dispatcher) linger(batch []outcome, n int, t *time.Timer) []outcome {
	t.Reset(d.r.cfg.AckLinger)
	defer t.Stop()
	for len(batch) < n && !d.moreWork.Load() {
		select {
		case o := <-d.results:
			batch = append(batch, o)
		case <-t.C:
			return batch
		case <-d.loopDone:
			return batch
		}
	}
	return batch
}

// record writes a batch of outcomes, retrying while the store is unreachable
// until the router's hard stop (then the leases expire and the attempts are
// retried by whichever instance claims them next). It reports whether it
// also refilled the slots the batch frees (see refill).
func (d *dispatcher) record(batch []outcome) (refilled bool) {
	panics.Hook("router.record")
	r := d.r
	t := d.trig.Load()
	now := time.Now()
	var acks []store.AttemptRef
	var lettered []store.LetteredAck
	var retries []store.Retry
	var deads []store.Dead
	for _, o := range batch {
		ref := store.AttemptRef{ID: o.item.ID, Attempt: o.item.Attempt}
		if !o.noTry && o.res.Verdict == delivery.Ack {
			if o.refused == nil {
				acks = append(acks, ref)
			} else {
				lettered = append(lettered, d.refusedLetters(o, t, now))
			}
			d.series.add(cAck, 1)
			continue
		}
		rt, dl := d.decide(o, t, now)
		if rt != nil {
			retries = append(retries, *rt)
			d.series.add(cRetry, 1)
		}
		if dl != nil {
			deads = append(deads, *dl)
			d.series.add(cDead, 1)
		}
	}
	if len(retries) == 0 && len(deads) == 0 && len(lettered) == 0 {
		if recorded, claimed := d.refill(acks, len(batch)); recorded {
			return claimed
		}
	}
	br := store.Breaker{Threshold: max(r.cfg.BreakerThreshold, 0), Cooldown: r.cfg.BreakerCooldown, MaxCooldown: r.cfg.BreakerMaxCooldown}
	var wait time.Duration
	scheduled := len(retries) > 0
	for {
		ctx, cancel := context.WithTimeout(r.attemptCtx, 10*time.Second)
		err := d.write(ctx, now, br, &acks, &lettered, &retries, &deads)
		cancel()
		if err == nil {
			if scheduled || t.Key != nil {
				// The claim loop learns when the first retry is due from
				// its next claim; without this it would sleep until a
				// lease or the sweep. For an ordered trigger, an event
				// that left its lane made the lane's next one ready.
				d.poke()
			}
			return
		}
		if r.attemptCtx.Err() != nil {
			r.log.Warn("outcomes not recorded before stop; their leases will expire and the events be retried", "trigger", d.name, "count", len(batch), "err", err)
			return
		}
		wait = nextBackoff(wait)
		if r.logAllowed(d.name, "record", "", "record outcomes") {
			r.log.Warn("record outcomes", "trigger", d.name, "err", err, "retry_in", wait)
		}
		backoffSleep(r.attemptCtx, wait)
	}
}

// refill records a batch of acks and, in the same round trip, claims as many
// attempts as the batch frees slots, when the claim loop is waiting for free
// slots with work waiting (moreWork). At full concurrency this takes the claim
// loop's round trip (and its wake-up) out of every slot's cycle. recorded
// is false when it recorded nothing (the caller records the acks as usual);
// claimed is true when it claimed, and has woken the claim loop if that is to
// look at the queue again.
//
// The attempts it starts are counted in r.attempts while the batch's still
// are, so that the count never touches zero in between: a Shutdown waiting
// for it stays valid.
func (d *dispatcher) refill(acks []store.AttemptRef, done int) (recorded, claimed bool) {
	r := d.r
	if !d.moreWork.Load() || r.intakeCtx.Err() != nil || d.stopped() {
		return false, false
	}
	t := d.trig.Load()
	req := d.claimRequest(t, d.inflight.Load()-int64(done))
	if req.Want <= 0 {
		return false, false
	}
	gen := r.backlog.gen(d.name)
	ctx, cancel := context.WithTimeout(r.attemptCtx, 10*time.Second)
	res, stale, acked, err := r.store.AckAndClaim(ctx, d.name, acks, time.Now(), req.Want, req.Limit, req.Lease)
	cancel()
	d.series.add(cStale, float64(stale))
	if err != nil {
		// The claim loop claims again; the acks are recorded as usual
		// unless they were.
		d.poke()
		if r.attemptCtx.Err() == nil {
			r.log.Warn("ack and claim", "trigger", d.name, "err", err)
		}
		return acked, false
	}
	r.backlog.observe(d.name, res.Held, gen)
	d.begin(t, res.Items)
	if len(res.Items) < req.Want || res.Ready == 0 || res.Breaker != store.BreakerClosed {
		// The queue ran short (or the breaker holds it): the claim loop
		// takes over and learns when to look again.
		d.moreWork.Store(false)
		d.poke()
	}
	return true, true
}

// write records the outcomes; each step that succeeds empties its slice, so
// a retry after a failure does not repeat it.
func (d *dispatcher) write(ctx context.Context, now time.Time, br store.Breaker, acks *[]store.AttemptRef, lettered *[]store.LetteredAck, retries *[]store.Retry, deads *[]store.Dead) error {
	s := d.r.store
	if len(*lettered) > 0 {
		// One script acknowledges and adds the letters: the event is never
		// acknowledged without its refused replies kept.
		stale, evicted, err := s.AckWithLetters(ctx, d.name, d.dlqCapacity(), *lettered)
		if err != nil {
			return err
		}
		d.series.add(cStale, float64(stale))
		if evicted > 0 {
			if d.r.logAllowed(d.name, "evicted", "", "dead-letter queue full: oldest entries evicted") {
				d.r.log.Warn("dead-letter queue full: oldest entries evicted", "trigger", d.name, "evicted", evicted)
			}
		}
		*lettered = nil
	}
	if len(*acks) > 0 {
		_, stale, err := s.Ack(ctx, d.name, *acks)
		if err != nil {
			return err
		}
		d.series.add(cStale, float64(stale))
		*acks = nil
	}
	if len(*retries) > 0 {
		if _, err := s.ScheduleRetries(ctx, d.name, now, br, *retries); err != nil {
			return err
		}
		*retries = nil
	}
	if len(*deads) > 0 {
		_, evicted, err := s.DeadLetter(ctx, d.name, now, br, d.dlqCapacity(), *deads)
		if err != nil {
			return err
		}
		if evicted > 0 {
			if d.r.logAllowed(d.name, "evicted", "", "dead-letter queue full: oldest entries evicted") {
				d.r.log.Warn("dead-letter queue full: oldest entries evicted", "trigger", d.name, "evicted", evicted)
			}
		}
		*deads = nil
	}
	return nil
}

// dlqCapacity is the most entries the trigger's dead-letter queue keeps.
func (d *dispatcher) dlqCapacity() int64 {
	return d.r.dlqPolicy(d.trig.Load()).MaxEntries
}

// refusedLetters turns a successful attempt's refused replies into dead
// letters of their own, logging and counting each once: the attempt is
// acknowledged, so nothing repeats them.
func (d *dispatcher) refusedLetters(o outcome, t *trigger.Trigger, now time.Time) store.LetteredAck {
	ev := o.event()
	la := store.LetteredAck{AttemptRef: store.AttemptRef{ID: o.item.ID, Attempt: o.item.Attempt}, Letters: make([]store.Letter, 0, len(o.refused))}
	// The attempt's round, as decide records it (dlq.History): the
	// history's replays, plus one when it is the story of an earlier life.
	round := int32(dlq.Round(o.item.History, false))
	attempt := &switchyardv1.Attempt{
		Number: int32(o.item.Attempt), StartTime: timestamppb.New(o.res.Start), Duration: durationpb.New(o.res.Duration),
		Code: o.res.Code, Message: o.res.Message, Round: round,
	}
	for _, rf := range o.refused {
		detail := rf.detail
		body, err := proto.Marshal(rf.event)
		if err != nil {
			detail += " (the reply cannot be encoded: " + err.Error() + ")"
		}
		traceID := traceIDOf(rf.event)
		if traceID == "" {
			traceID = traceIDOf(ev)
		}
		letter, err := dlq.Bury(&switchyardv1.DeadLetter{Attempts: []*switchyardv1.Attempt{attempt}},
			dlq.Death{Trigger: d.name, Target: t.Spec.Target.String(), Reason: rf.reason, Detail: detail, Time: now, TraceID: traceID})
		if err != nil {
			d.r.log.Error("refused reply's story cannot be encoded; it is dead-lettered without it", "event_id", ev.GetId(), "trigger", d.name, "err", err)
		}
		la.Letters = append(la.Letters, store.Letter{Event: body, Letter: letter})
		reason := strings.TrimPrefix(rf.reason.String(), "DEAD_LETTER_REASON_")
		if d.r.logAllowed(d.name, "refused", reason, "function reply refused and dead-lettered; the event is acknowledged") {
			d.r.log.Warn("function reply refused and dead-lettered; the event is acknowledged",
				"event_id", ev.GetId(), "event_source", ev.GetSource(), "trigger", d.name, "trace_id", traceID, "attempt", o.item.Attempt,
				"reply_id", rf.event.GetId(), "reply_type", rf.event.GetType(), "reason", reason, "detail", detail)
		}
		d.series.replyRefused(reason)
		d.series.deadLetter(reason)
	}
	return la
}

// fate is what becomes of a failed (or impossible) attempt: a retry due at
// due, or a dead letter for reason (with detail).
type fate struct {
	retry  bool
	due    time.Time
	reason switchyardv1.DeadLetterReason
	detail string
}

// decideFate is the decision alone, a pure function of the outcome, the
// trigger, when the event's life began (store.Claimed.Born) and now: an
// impossible attempt keeps the reason it was given; a failed one is dead
// when its target said so (DeadNow), at max_attempts, or when its next
// attempt would pass max_event_age; otherwise it is retried after the
// backoff (the target's retry hint honoured, capped).
func decideFate(o *outcome, t *trigger.Trigger, born, now time.Time) fate {
	if o.noTry {
		return fate{reason: o.reason, detail: o.detail}
	}
	pol := t.Spec.Delivery
	switch {
	case o.res.Verdict == delivery.DeadNow:
		return fate{reason: o.res.Reason, detail: fmt.Sprintf("%s answered %s", t.Spec.Target, o.res.Code)}
	case o.item.Attempt >= pol.MaxAttempts:
		return fate{reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_ATTEMPTS,
			detail: fmt.Sprintf("%d attempts failed; last: %s", o.item.Attempt, o.res.Code)}
	}
	due := now.Add(delivery.Backoff(o.item.Attempt, pol.InitialBackoff.Duration, pol.MaxBackoff.Duration, o.res.RetryAfter))
	if !born.IsZero() && due.Sub(born) > pol.MaxEventAge.Duration {
		return fate{reason: switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_MAX_AGE,
			detail: fmt.Sprintf("the next attempt would come after max_event_age %s; last: %s", pol.MaxEventAge.Duration, o.res.Code)}
	}
	return fate{retry: true, due: due}
}

// attemptRecord is a finished attempt as its event's history records it.
func attemptRecord(o *outcome, round int32) *switchyardv1.Attempt {
	a := &switchyardv1.Attempt{
		Number: int32(o.item.Attempt), StartTime: timestamppb.New(o.res.Start), Duration: durationpb.New(o.res.Duration),
		Code: o.res.Code, HttpStatus: int32(o.res.HTTPStatus), Message: o.res.Message, Round: round,
	}
	if o.res.RetryAfter > 0 {
		a.RetryAfter = durationpb.New(o.res.RetryAfter)
	}
	return a
}

// decide turns a failed (or impossible) attempt into a scheduled retry or a
// dead letter (decideFate), carrying the event's history of attempts
// (dlq.History, dlq.Bury), and logs and counts it.
func (d *dispatcher) decide(o outcome, t *trigger.Trigger, now time.Time) (*store.Retry, *store.Dead) {
	ft := decideFate(&o, t, o.item.Born(), now)
	hist := dlq.History(o.item.History)
	if at := store.IDTime(o.item.ID); hist.AcceptTime == nil && !at.IsZero() {
		hist.AcceptTime = timestamppb.New(at)
	}
	if !o.noTry {
		hist.Attempts = append(hist.Attempts, attemptRecord(&o, hist.GetReplays()))
	}
	ref := store.AttemptRef{ID: o.item.ID, Attempt: o.item.Attempt}
	ev := o.event()
	traceID := traceIDOf(ev)
	log := d.r.log.With("event_id", ev.GetId(), "event_source", ev.GetSource(), "trigger", d.name, "trace_id", traceID, "attempt", o.item.Attempt)
	if ft.retry {
		b, err := dlq.Encode(hist)
		if err != nil {
			log.Error("attempt history cannot be encoded; the retry goes without it", "err", err)
		}
		if d.r.logAllowed(d.name, "retry", o.res.Code, "attempt failed; retry scheduled") {
			log.Info("attempt failed; retry scheduled", "code", o.res.Code, "message", o.res.Message, "retry_at", ft.due)
		}
		return &store.Retry{AttemptRef: ref, Due: ft.due, History: b, Health: o.res.Health}, nil
	}
	b, err := dlq.Bury(hist, dlq.Death{Trigger: d.name, Target: t.Spec.Target.String(), Reason: ft.reason, Detail: ft.detail, Time: now, TraceID: traceID})
	if err != nil {
		log.Error("dead letter's story cannot be encoded; the event is dead-lettered without it", "err", err)
	}
	if d.r.logAllowed(d.name, "dead", ft.reason.String(), "event dead-lettered") {
		log.Warn("event dead-lettered", "reason", ft.reason.String(), "detail", ft.detail)
	}
	d.series.deadLetter(strings.TrimPrefix(ft.reason.String(), "DEAD_LETTER_REASON_"))
	return nil, &store.Dead{AttemptRef: ref, Letter: b, Failed: !o.noTry, Health: !o.noTry && o.res.Health}
}

// replayRound returns the life of a claimed event, as InvokeRequest.round
// reports it (dlq.Round). The history lives in the store with the event and
// changes only in the scripts that move it, so the round is exact across
// restarts.
func replayRound(it store.Claimed) int { return dlq.Round(it.History, !it.Since.IsZero()) }

// traceIDOf returns the W3C trace id of the event's traceparent extension
// (CloudEvents distributed tracing extension), or "".
func traceIDOf(ev *pb.CloudEvent) string {
	tp, ok := cloudevent.Attribute(ev, "traceparent")
	if !ok {
		return ""
	}
	parts := strings.Split(tp, "-")
	if len(parts) < 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}
