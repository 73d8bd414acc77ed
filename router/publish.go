package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
)

// PublishResult reports an accepted publish.
type PublishResult struct {
	// Triggers lists, per event, the triggers it was routed to.
	Triggers [][]string
	// Routed sums the deliveries queued.
	Routed int
}

// appendReq is one publish waiting for the group-commit writer. With direct
// set, every record goes straight into that trigger's queue (one atomic step
// in its hash slot); otherwise the records go to the ingest log and are
// fanned out from there.
type appendReq struct {
	ctx    context.Context
	recs   []store.LogRecord
	direct string
	arc    [][]byte // what the archive keeps of the publish, when it is on
	// laned, for a direct publish to an ordered trigger, are recs as
	// queue items with their lanes; lanes, for a publish through the log,
	// are the ordered triggers' events taken out of recs (lanes.go).
	laned []store.Item
	lanes map[string][]store.Item
	done  chan error
}

// empty reports whether the request writes no event to a queue or the log
// (nothing it published matched a trigger); it may still archive.
func (req *appendReq) empty() bool {
	return len(req.recs) == 0 && len(req.lanes) == 0 && len(req.laned) == 0
}

var inputPool = sync.Pool{New: func() any { return filter.NewInput(nil) }}

// Publish accepts events atomically: it returns nil only once every event is
// durable in the store (all of them or none). Errors: *InvalidEventsError
// (nothing accepted), *PushbackError (a matching trigger's queue is full;
// nothing accepted), ErrStoreFull (Redis is out of memory; nothing
// accepted), ErrUnavailable, ErrStopping.
func (r *Router) Publish(ctx context.Context, events []*pb.CloudEvent) (_ PublishResult, err error) {
	if r.stopping.Load() {
		return PublishResult{}, ErrStopping
	}
	if len(events) == 0 {
		return PublishResult{}, &InvalidEventsError{Errs: []error{&cloudevent.Error{Kind: cloudevent.ErrEmptyBatch, Index: -1, Detail: "no events"}}}
	}
	if len(events) > r.cfg.MaxBatchEvents {
		return PublishResult{}, &InvalidEventsError{Errs: []error{&cloudevent.Error{Kind: cloudevent.ErrTooLarge, Index: -1,
			Detail: fmt.Sprintf("a batch holds at most %d events, got %d", r.cfg.MaxBatchEvents, len(events))}}}
	}
	var bad []error
	var dues []time.Time // per event, when it asks for later delivery
	now := time.Now()
	for i, ev := range events {
		err := cloudevent.Validate(ev)
		if err == nil {
			// A hop count a publisher could make negative or unreadable
			// would reset the loop guard: refused for every caller.
			if _, herr := Hops(ev); herr != nil {
				err = &cloudevent.Error{Kind: cloudevent.ErrInvalidAttribute, Attribute: HopsExtension, Index: -1, Detail: herr.Error()}
			}
		}
		if err == nil {
			if due, derr := DeliverAfter(ev, now, r.cfg.MaxDeliverAfter); derr != nil {
				err = &cloudevent.Error{Kind: cloudevent.ErrInvalidAttribute, Attribute: DeliverAfterExtension, Index: -1, Detail: derr.Error()}
			} else if !due.IsZero() {
				if dues == nil {
					dues = make([]time.Time, len(events))
				}
				dues[i] = due
			}
		}
		if err != nil {
			var ce *cloudevent.Error
			if errors.As(err, &ce) {
				c := *ce
				if len(events) > 1 {
					c.Index = i
				}
				bad = append(bad, &c)
			} else {
				bad = append(bad, fmt.Errorf("event[%d]: %w", i, err))
			}
		}
	}
	if len(bad) > 0 {
		r.metrics.publishRefused.WithLabelValues("invalid").Add(float64(len(events)))
		return PublishResult{}, &InvalidEventsError{Errs: bad}
	}
	snap := r.snap.Load()
	res := PublishResult{Triggers: make([][]string, len(events))}
	in := inputPool.Get().(*filter.Input)
	in.SetCELBudget(r.cfg.FilterCostPerEvent)
	for i, ev := range events {
		in.Reset(ev)
		res.Triggers[i] = snap.index.Match(in, nil)
		res.Routed += len(res.Triggers[i])
		if in.CELBudgetExhausted() {
			r.filterBudgetSpent(ev)
		}
	}
	in.Reset(nil)
	inputPool.Put(in)
	var stamp traceStamp
	if r.tr != nil {
		var span trace.Span
		span, stamp = r.tr.startPublish(ctx, events, res)
		defer func() { endSpan(span, err) }()
	}
	if res.Routed == 0 && r.archive == nil {
		r.metrics.published.Add(float64(len(events)))
		r.metrics.unmatched.Add(float64(len(events)))
		return res, nil
	}
	if err := r.admit(snap, res.Triggers); err != nil {
		r.metrics.publishRefused.WithLabelValues("pushback").Add(float64(len(events)))
		var pe *PushbackError
		if errors.As(err, &pe) {
			r.metrics.trigger(pe.Trigger).add(cPushback, float64(len(events)))
		}
		return PublishResult{}, err
	}
	direct := soleTrigger(res.Triggers)
	lanes := lanesFor(snap.triggers[direct])
	var laned []store.Item
	var logLanes *logLanes
	viaLog := direct == ""
	// queued are the bytes queued for the routed events, in order, for the
	// archive (recs may lose events to lanes below).
	var queued [][]byte
	recs := make([]store.LogRecord, 0, len(events))
	for i, ev := range events {
		if len(res.Triggers[i]) == 0 {
			continue
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			return PublishResult{}, fmt.Errorf("event[%d]: encode: %w", i, err)
		}
		rec := store.LogRecord{Event: stamp.stamp(ev, b), Triggers: res.Triggers[i]}
		if dues != nil {
			rec.Due = dues[i]
		}
		if direct != "" {
			rec.ID = r.newID(now)
		}
		if r.archive != nil {
			queued = append(queued, rec.Event)
		}
		if lanes != nil {
			laned = append(laned, lanes.item(rec.ID, ev, rec.Event, rec.Due))
		}
		if viaLog {
			if rec = r.takeLanes(&logLanes, snap, rec, ev, now); len(rec.Triggers) == 0 {
				continue
			}
		}
		recs = append(recs, rec)
	}
	var arc [][]byte
	if r.archive != nil {
		if arc, err = archiveBodies(events, res.Triggers, queued, stamp); err != nil {
			return PublishResult{}, err
		}
	}
	if err := r.appendLog(ctx, recs, direct, arc, laned, logLanes.lanes()); err != nil {
		if errors.Is(err, ErrStoreFull) {
			r.metrics.publishRefused.WithLabelValues("store_full").Add(float64(len(events)))
		}
		return PublishResult{}, err
	}
	if direct == "" {
		if logLanes == nil {
			r.backlog.accepted(res.Triggers)
		} else {
			// The ordered triggers' share is queued, not logged.
			logged := make([][]string, len(recs))
			for i, rec := range recs {
				logged[i] = rec.Triggers
			}
			r.backlog.accepted(logged)
		}
	}
	r.metrics.published.Add(float64(len(events)))
	r.metrics.unmatched.Add(float64(unmatchedOf(res.Triggers)))
	return res, nil
}

// unmatchedOf counts the events routed to no trigger.
func unmatchedOf(matched [][]string) int {
	n := 0
	for _, ts := range matched {
		if len(ts) == 0 {
			n++
		}
	}
	return n
}

// soleTrigger returns the one trigger every routed event of a publish goes
// to, or "" when the publish routes to more than one. Such a publish skips
// the ingest log: its events are queued straight into that trigger's queue in
// one atomic step, which keeps "all or none" without a second write.
func soleTrigger(matched [][]string) string {
	sole := ""
	for _, ts := range matched {
		switch {
		case len(ts) == 0:
		case len(ts) > 1:
			return ""
		case sole == "":
			sole = ts[0]
		case ts[0] != sole:
			return ""
		}
	}
	return sole
}

// newID returns a queue id for an event queued without the ingest log:
// "<unix ms>-<instance nonce>.<sequence>". Like a log entry id it starts with
// the acceptance time (store.IDTime reads it), and the nonce keeps ids of
// different instances apart.
func (r *Router) newID(now time.Time) string {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, '-')
	b = append(b, r.idNonce...)
	b = append(b, '.')
	b = strconv.AppendUint(b, r.idSeq.Add(1), 36)
	return string(b)
}

// admit refuses the publish when a matching trigger's queue is at its cap,
// suggesting a retry once this instance's delivery rate should have made
// room for the publish.
func (r *Router) admit(snap *snapshot, matched [][]string) error {
	pe := r.backlog.atCap(snap, matched)
	if pe == nil {
		return nil
	}
	var need int64
	for _, ts := range matched {
		for _, name := range ts {
			if name == pe.Trigger {
				need++
			}
		}
	}
	var rate float64
	r.mu.Lock()
	if d := r.dispatchers[pe.Trigger]; d != nil {
		rate = d.drain.perSecond(time.Now())
	}
	r.mu.Unlock()
	if rate == 0 {
		rate = r.pullDrainRate(pe.Trigger)
	}
	pe.RetryAfter = pushbackDelay(pe.Undelivered, pe.MaxQueue, need, rate)
	return pe
}

// appendLog hands records to the group-commit writers and waits for Redis.
func (r *Router) appendLog(ctx context.Context, recs []store.LogRecord, direct string, arc [][]byte, laned []store.Item, lanes map[string][]store.Item) error {
	req := &appendReq{ctx: ctx, recs: recs, direct: direct, arc: arc, laned: laned, lanes: lanes, done: make(chan error, 1)}
	select {
	case r.appendCh <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-r.intakeCtx.Done():
		return ErrStopping
	}
	select {
	case err := <-req.done:
		r.noteWrite(err)
		switch {
		case store.IsFull(err):
			return fmt.Errorf("%w: %w", ErrStoreFull, err)
		case err != nil:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil
	case <-r.intakeCtx.Done():
		return ErrStopping
	case <-ctx.Done():
		// The write may still land: the publisher sees an error and may
		// publish again, which at-least-once delivery tolerates.
		return ctx.Err()
	}
}

// appendLoop is a group-commit writer: it takes every pending request and
// writes them in one transaction, so concurrent publishers share round trips.
func (r *Router) appendLoop(ctx context.Context) {
	const maxRecs = 2048
	batch := make([]*appendReq, 0, 64)
	for {
		var first *appendReq
		select {
		case first = <-r.appendCh:
		case <-ctx.Done():
			r.failPending(batch)
			return
		}
		batch = append(batch[:0], first)
		n := len(first.recs)
	drain:
		for n < maxRecs {
			select {
			case req := <-r.appendCh:
				batch = append(batch, req)
				n += len(req.recs)
			default:
				break drain
			}
		}
		if panics.Run(r.log, "router.commit", func() { r.commit(batch) }) {
			// Whoever was not answered yet learns that nothing is known
			// of its write (it may have landed: a publisher that tries
			// again may publish twice, as after a timeout).
			for _, req := range batch {
				select {
				case req.done <- errCommitPanic:
				default:
				}
			}
		}
	}
}

// errCommitPanic answers the publishers of a group commit that panicked.
var errCommitPanic = errors.New("internal error while writing the events")

// commit writes one group of publishes: the direct ones into their
// triggers' queues (one script per trigger, each atomic), the rest into the
// ingest log in one transaction. Each request learns whether its own write
// landed.
func (r *Router) commit(batch []*appendReq) {
	panics.Hook("router.commit")
	var logged [][]store.LogRecord
	var direct, lanes map[string][]store.Item
	var arc [][]byte
	for _, req := range batch {
		if req.ctx.Err() != nil {
			continue // its publisher gave up: write nothing for it
		}
		arc = append(arc, req.arc...)
		if req.empty() {
			continue // nothing matched: archived only
		}
		if req.direct == "" {
			logged = append(logged, req.recs)
			for t, items := range req.lanes {
				if lanes == nil {
					lanes = map[string][]store.Item{}
				}
				lanes[t] = append(lanes[t], items...)
			}
			continue
		}
		if direct == nil {
			direct = map[string][]store.Item{}
		}
		if req.laned != nil {
			direct[req.direct] = append(direct[req.direct], req.laned...)
			continue
		}
		for _, rec := range req.recs {
			direct[req.direct] = append(direct[req.direct], store.Item{ID: rec.ID, Event: rec.Event, Due: rec.Due})
		}
	}
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logErr, directErr error
	arcErr := r.archiveAsync(wctx, arc)
	switch {
	case len(lanes) > 0:
		logErr = r.appendLogAndLanes(wctx, lanes, logged)
	case len(logged) > 0:
		logErr = r.store.AppendLog(wctx, logged...)
	}
	var claimed map[string]store.ClaimResult
	var ds map[string]*dispatcher
	if len(direct) > 0 {
		claimed, ds, directErr = r.commitDirect(wctx, direct)
	}
	aerr := arcErr()
	for _, req := range batch {
		var err error
		switch {
		case req.empty():
		case req.direct == "":
			err = logErr
		default:
			err = triggerErr(directErr, req.direct)
		}
		if err == nil && len(req.arc) > 0 {
			err = aerr
		}
		req.done <- err
	}
	// After the answers: handing out an expired lease may wait for the
	// trigger's completer.
	for t, res := range claimed {
		d := ds[t]
		d.begin(d.trig.Load(), res.Items)
	}
}

// commitDirect queues the direct publishes' events, claiming for the
// lightly loaded triggers (see commitClaims) in the same transaction. It
// returns the claims' results and their dispatchers, for the caller to start
// once it has answered the publishers, and the write's error.
func (r *Router) commitDirect(ctx context.Context, direct map[string][]store.Item) (map[string]store.ClaimResult, map[string]*dispatcher, error) {
	claims, ds := r.commitClaims(direct)
	r.stampDedup(direct)
	// On Redis Cluster the triggers' writes are one transaction per hash
	// slot, and with --ack-after replicas=N a write may land unconfirmed:
	// what landed is queued and its claims start, whatever err says about
	// the rest (each publisher is answered for its own trigger).
	held, claimed, claimErr, err := r.store.AddAndClaim(ctx, direct, time.Now(), claims)
	if len(held) == 0 && err != nil {
		return nil, nil, err
	}
	if claimErr != nil && r.intakeCtx.Err() == nil {
		r.log.Warn("claim with publish", "err", claimErr)
	}
	// A trigger whose claim took every event waiting needs no wake-up; the
	// others' claim loops look at their queues.
	var settled map[string]bool
	for t, res := range claimed {
		// A delayed event needs the claim loop, which waits for its time.
		if res.Ready == 0 && res.Breaker == store.BreakerClosed && !anyDue(direct[t]) {
			if settled == nil {
				settled = map[string]bool{}
			}
			settled[t] = true
		}
	}
	dups := r.countDuplicates(direct)
	for t, items := range direct {
		r.metrics.trigger(t).add(cEnqueued, float64(len(items)-dups[t]))
	}
	r.queued(ctx, held, nil, settled)
	r.wakePeersForDelayed(ctx, direct)
	return claimed, ds, err
}

// triggerErr returns the part of a direct commit's error that concerns
// trigger's write (see store.TriggerErrors).
func triggerErr(err error, trigger string) error {
	var te store.TriggerErrors
	if errors.As(err, &te) {
		if e := te.For(trigger); e != nil {
			return fmt.Errorf("queue: %w", e)
		}
		return nil
	}
	return err
}

// commitClaims picks the direct triggers whose dispatcher on this instance
// is lightly loaded (an eighth of its slots busy at most, and its claim loop
// not waiting for slots): the commit claims for them in its own round trip, so their
// events' first attempts start without waiting for a claim loop to wake and
// claim. A busy trigger's claim loop and completer keep claiming in batches.
func (r *Router) commitClaims(direct map[string][]store.Item) (map[string]store.ClaimRequest, map[string]*dispatcher) {
	if r.intakeCtx.Err() != nil {
		return nil, nil
	}
	var claims map[string]store.ClaimRequest
	var ds map[string]*dispatcher
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range direct {
		d := r.dispatchers[t]
		if d == nil || d.moreWork.Load() || d.stopped() {
			continue
		}
		// Lightly loaded: fewer attempts running than a batched claim
		// would take (see claim); those finished and waiting to be
		// recorded (see Config.AckLinger) do not count. A busier trigger's
		// claims are better batched by its own loops.
		trig := d.trig.Load()
		inflight := d.inflight.Load()
		if inflight-d.finished.Load() >= int64(d.minClaim(trig)) {
			continue
		}
		if claims == nil {
			claims, ds = map[string]store.ClaimRequest{}, map[string]*dispatcher{}
		}
		claims[t] = d.claimRequest(trig, inflight)
		ds[t] = d
	}
	return claims, ds
}

// queued records what the store said after events were queued: each
// trigger's queue size (fromLog: how many of them left the ingest log), and
// wakes the triggers' dispatchers here, but for the settled ones, and, when
// there are any, on the other instances.
func (r *Router) queued(ctx context.Context, held map[string]int64, fromLog map[string]int64, settled map[string]bool) {
	r.backlog.queued(held, fromLog)
	names := make([]string, 0, len(held))
	for t := range held {
		names = append(names, t)
	}
	for _, t := range names {
		if !settled[t] {
			r.wake(t)
		}
	}
	if r.peers.Load() && len(names) > 0 {
		r.store.Client().Publish(ctx, r.store.Keys().WakeChannel(), strings.Join(names, ","))
	}
}

func (r *Router) failPending(batch []*appendReq) {
	for {
		select {
		case req, ok := <-r.appendCh:
			if !ok {
				return
			}
			req.done <- ErrStopping
		default:
			return
		}
	}
}

// Sink adapts the router to connectors.Sink (Publish returning only the error).
type Sink struct{ R *Router }

// Publish accepts events atomically; see Router.Publish.
func (s Sink) Publish(ctx context.Context, events []*pb.CloudEvent) error {
	_, err := s.R.Publish(ctx, events)
	return err
}

// anyDue reports whether an item waits for a later first attempt.
func anyDue(items []store.Item) bool {
	for _, it := range items {
		if !it.Due.IsZero() {
			return true
		}
	}
	return false
}
