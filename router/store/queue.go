package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Item is an event to queue for a trigger.
type Item struct {
	// ID identifies the event within the queue; queuing an ID twice stores it once.
	ID string
	// Event is the event (io.cloudevents.v1.CloudEvent bytes).
	Event []byte
	// Lane, set for an ordered trigger's events (see LaneName), queues the
	// event in that lane (lanes.go); BlockOnDead makes its dead letter
	// stop the lane. When one item of a trigger's batch has a Lane, the
	// items without one go to the default lane.
	Lane        string
	BlockOnDead bool
	// DedupKey, when set, is the event's DedupKey: the item is queued only
	// if no item of that key was queued for the trigger within
	// DedupWindow (see dedup.go). Empty: no check.
	DedupKey    string
	DedupWindow time.Duration
	// Duplicate is set by the call that was given the item (Enqueue, Add,
	// AddAndClaim, AppendLogAndLanes) when it was not queued for being a
	// copy of an event of the same DedupKey queued within the window.
	Duplicate bool
	// Due, when after the time of the write, delays the event's first
	// attempt until then (its publisher's deliverafter): it waits in the
	// delayed ZSET like a scheduled retry (see after.go).
	Due time.Time
}

// Enqueue queues items for each trigger (trigger name → items) in one
// pipeline. It returns, per trigger, the number of events the queue holds.
// When Redis is out of memory it fails with ErrFull.
func (s *Store) Enqueue(ctx context.Context, batches map[string][]Item) (map[string]int64, error) {
	return s.enqueue(ctx, enqueueScript, 0, batches)
}

// EnqueueWhenFull is Enqueue for when Redis is out of memory: it queues
// items even then, but only into queues holding at most room events (its
// script declares allow-oom), and fails with ErrFull naming the others,
// whose items it leaves unqueued.
//
// Without it, an ingest log that filled Redis while the queues were
// drained empty would stay full for good: publishing refused, nothing left
// to deliver, and the fan-out refused as a writer of new copies. Queuing
// into nearly empty queues lets delivery go on, and bounds how far past
// maxmemory Redis goes: room events per trigger at a time, the log's copies
// freed as each batch is acknowledged.
func (s *Store) EnqueueWhenFull(ctx context.Context, room int64, batches map[string][]Item) (map[string]int64, error) {
	return s.enqueue(ctx, s.oom(enqueueRoomScript), max(room, 1), batches)
}

func (s *Store) enqueue(ctx context.Context, sc *redis.Script, room int64, batches map[string][]Item) (map[string]int64, error) {
	if s.dur.Replicas > 0 && s.cluster() != nil {
		return s.enqueueWait(ctx, sc, room, batches)
	}
	type res struct {
		trigger string
		cmd     *redis.Cmd
	}
	var cmds []res
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) {
		cmds = cmds[:0]
		for trig, items := range batches {
			w := dedupWindow(items)
			if queuedEach(items, w) {
				cmds = append(cmds, res{trig, s.eachScript(sc).EvalSha(ctx, p, s.dedupKeys(trig), eachArgs(room, items)...)})
				continue
			}
			if w > 0 {
				cmds = append(cmds, res{trig, s.dedupScript(room).EvalSha(ctx, p, s.dedupKeys(trig), dedupArgs(room, w, items)...)})
				continue
			}
			for _, c := range s.enqueueCmds(ctx, p, sc, room, trig, items) {
				cmds = append(cmds, res{trig, c})
			}
		}
	})
	if err != nil {
		return nil, full(fmt.Errorf("enqueue: %w", err))
	}
	held := make(map[string]int64, len(cmds))
	var crowded []string
	for _, c := range cmds {
		v, _ := c.cmd.Slice()
		added, h, ok := enqueued(v, batches[c.trigger])
		if !ok {
			return nil, fmt.Errorf("enqueue %s: %w: %d elements", c.trigger, errReplyShape, len(v))
		}
		held[c.trigger] = h
		if added < 0 {
			crowded = append(crowded, c.trigger)
		}
	}
	if len(crowded) > 0 {
		return held, fmt.Errorf("%w: enqueue: the queues of %s hold more than %d events", ErrFull, strings.Join(crowded, ", "), room)
	}
	return held, nil
}

// enqueueWait is Enqueue on a cluster whose writes wait for replicas: each
// slot's scripts run on a connection of their own to the slot's master,
// followed by a WAIT there. On one server (or behind Sentinel) the fan-out
// needs no WAIT of its own: a replica receives the master's writes in
// order, so one that has the log's acknowledgement has the queues' writes
// made before it; on a cluster the log and the queues are on different
// masters, and the log is acknowledged only once the queues' replicas have
// the events.
func (s *Store) enqueueWait(ctx context.Context, sc *redis.Script, room int64, batches map[string][]Item) (map[string]int64, error) {
	names := make([]string, 0, len(batches))
	for t := range batches {
		names = append(names, t)
	}
	held := make(map[string]int64, len(names))
	var mu sync.Mutex
	failed := s.perSlot(s.bySlot(names), func(group []string) error {
		m, err := s.master(ctx, s.keys.Queue(group[0]).Ready)
		if err != nil {
			return err
		}
		conn := m.Conn()
		defer conn.Close()
		run := func() ([]*redis.Cmd, error) {
			cmds := make([]*redis.Cmd, len(group))
			_, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, trig := range group {
					w := dedupWindow(batches[trig])
					if queuedEach(batches[trig], w) {
						cmds[i] = s.eachScript(sc).Eval(ctx, p, s.dedupKeys(trig), eachArgs(room, batches[trig])...)
						continue
					}
					if w > 0 {
						cmds[i] = s.dedupScript(room).EvalSha(ctx, p, s.dedupKeys(trig), dedupArgs(room, w, batches[trig])...)
						continue
					}
					// The last command of a trigger holds its queue's size.
					for _, c := range s.enqueueCmds(ctx, p, sc, room, trig, batches[trig]) {
						cmds[i] = c
					}
				}
				return nil
			})
			return cmds, err
		}
		cmds, err := run()
		if err != nil && isNoScript(err) {
			for _, l := range []*redis.Script{sc, s.dedupScript(room), s.afterScriptFor(sc)} {
				if lerr := l.Load(ctx, m).Err(); lerr != nil {
					return errors.Join(err, lerr)
				}
			}
			cmds, err = run()
		}
		if err != nil {
			return full(err)
		}
		var crowded []string
		mu.Lock()
		var shapeErr error
		for i, c := range cmds {
			v, _ := c.Slice()
			added, h, ok := enqueued(v, batches[group[i]])
			if !ok {
				shapeErr = fmt.Errorf("enqueue %s: %w: %d elements", group[i], errReplyShape, len(v))
				continue
			}
			held[group[i]] = h
			if added < 0 {
				crowded = append(crowded, group[i])
			}
		}
		mu.Unlock()
		if shapeErr != nil {
			return shapeErr
		}
		if len(crowded) > 0 {
			return fmt.Errorf("%w: the queues of %s hold more than %d events", ErrFull, strings.Join(crowded, ", "), room)
		}
		return s.wait(ctx, conn)
	})
	if len(failed) > 0 {
		return nil, fmt.Errorf("enqueue: %w", TriggerErrors(failed))
	}
	return held, nil
}

// Add queues items whose ids are new (unique, never queued before: the
// caller made them) for each trigger, one MULTI/EXEC per trigger's hash slot.
// It skips Enqueue's duplicate check, and keeps the event bodies out of Lua,
// whose string copies cost more than the writes themselves. It returns, per
// trigger, the number of events the queue holds. See AddAndClaim for its
// errors.
func (s *Store) Add(ctx context.Context, batches map[string][]Item) (map[string]int64, error) {
	held, _, _, err := s.AddAndClaim(ctx, batches, time.Time{}, nil)
	return held, err
}

// addCmds queues the writes of Add for one trigger on p; the last command
// is the HLEN of its events.
func (s *Store) addCmds(ctx context.Context, p redis.Pipeliner, trig string, items []Item) []redis.Cmder {
	q := s.keys.Queue(trig)
	now := time.Now()
	items, later := splitDue(items, now)
	var cmds []redis.Cmder
	if len(items) > 0 {
		pairs := make([]any, 0, 2*len(items))
		ids := make([]any, 0, len(items))
		for _, it := range items {
			pairs = append(pairs, it.ID, it.Event)
			ids = append(ids, it.ID)
		}
		cmds = append(cmds,
			p.HSet(ctx, q.Events, pairs...),
			p.RPush(ctx, q.Ready, ids...),
			p.HIncrBy(ctx, q.Stats, "enqueued", int64(len(items))))
	}
	if len(later) > 0 {
		// Delayed events (rare, never the hot path) go through the
		// script, sent whole: EVALSHA in a MULTI could fail NOSCRIPT
		// after the writes before it were queued.
		cmds = append(cmds, p.Eval(ctx, enqueueAfterLua, s.afterKeys(trig), afterArgs(0, now, later)...))
	}
	return append(cmds, p.HLen(ctx, q.Events))
}

// ClaimRequest asks AddAndClaim to claim for a trigger once its items are
// queued: as Claim's want, limit and lease.
type ClaimRequest struct {
	Want, Limit int
	Lease       time.Duration
}

// AddAndClaim queues items as Add does and, in the same transaction, claims
// for the triggers in claims as Claim does: an idle trigger's first attempt
// leaves with the write that made its event durable, instead of one round
// trip later.
//
// err reports the write alone: nil when every item is queued. The writes of
// triggers in different hash slots (Redis Cluster) are separate
// transactions; when only some of them fail, err is a TriggerErrors naming
// those. A *ReplicationError (alone or in TriggerErrors) says the items are
// queued but not confirmed by the replicas the store's Durability asks.
// held and claimed cover every trigger whose items are queued. claimErr
// reports a claim that failed after its write, whose trigger's queue then
// waits for an ordinary Claim.
func (s *Store) AddAndClaim(ctx context.Context, batches map[string][]Item, now time.Time, claims map[string]ClaimRequest) (held map[string]int64, claimed map[string]ClaimResult, claimErr, err error) {
	names := make([]string, 0, len(batches))
	for t := range batches {
		names = append(names, t)
	}
	groups := s.bySlot(names)
	held = make(map[string]int64, len(names))
	claimed = map[string]ClaimResult{}
	var mu sync.Mutex
	var claimErrs []error
	failed := s.perSlot(groups, func(group []string) error {
		h, c, cerr, err := s.addAndClaim(ctx, group, batches, now, claims)
		mu.Lock()
		defer mu.Unlock()
		maps.Copy(held, h)
		maps.Copy(claimed, c)
		if cerr != nil {
			claimErrs = append(claimErrs, cerr)
		}
		return err
	})
	claimErr = errors.Join(claimErrs...)
	if len(held) == 0 {
		held, claimed = nil, nil
	}
	switch {
	case len(failed) == 0:
		return held, claimed, claimErr, nil
	case len(groups) == 1:
		return held, claimed, claimErr, failed[names[0]]
	}
	return held, claimed, claimErr, TriggerErrors(failed)
}

// addAndClaim is AddAndClaim for triggers of one hash slot: one transaction.
func (s *Store) addAndClaim(ctx context.Context, group []string, batches map[string][]Item, now time.Time, claims map[string]ClaimRequest) (held map[string]int64, claimed map[string]ClaimResult, claimErr, err error) {
	// The claims run inside the transaction, after the writes: a claim's
	// error (NOSCRIPT) is its own reply and leaves the writes' outcome
	// clear, and go-redis never resends a transaction whose reply it lost
	// (a resent RPUSH would queue an id twice).
	var writes []redis.Cmder
	var hlens map[string]*redis.IntCmd
	var scripts map[string]*redis.Cmd
	var dedups map[string]*redis.Cmd // triggers queued by dedupAddScript
	var adds map[string]*redis.Cmd   // triggers queued and claimed by addClaimScript
	var each map[string]*redis.Cmd   // triggers queued by enqueueEachScript
	txErr := s.acceptTx(ctx, s.keys.Queue(group[0]).Ready, func(p redis.Pipeliner) {
		writes, hlens, scripts, dedups, adds, each = writes[:0], map[string]*redis.IntCmd{}, map[string]*redis.Cmd{}, nil, nil, nil
		for _, trig := range group {
			if c, ok := claims[trig]; ok && addsAndClaims(batches[trig], now) {
				if adds == nil {
					adds = map[string]*redis.Cmd{}
				}
				hset, sc := s.addClaimCmds(ctx, p, trig, batches[trig], now, c)
				writes = append(writes, hset)
				adds[trig] = sc
				continue
			}
			win := dedupWindow(batches[trig])
			if queuedEach(batches[trig], win) {
				if each == nil {
					each = map[string]*redis.Cmd{}
				}
				// By EVAL: a NOSCRIPT inside the transaction would fail
				// the publish.
				c := enqueueEachScript.Eval(ctx, p, s.dedupKeys(trig), eachArgs(0, batches[trig])...)
				writes = append(writes, c)
				each[trig] = c
				continue
			}
			if win > 0 {
				if dedups == nil {
					dedups = map[string]*redis.Cmd{}
				}
				hset, sc := s.dedupAddCmds(ctx, p, trig, win, batches[trig])
				writes = append(writes, hset)
				dedups[trig] = sc
				continue
			}
			w := s.addCmds(ctx, p, trig, batches[trig])
			writes = append(writes, w...)
			hlens[trig] = w[len(w)-1].(*redis.IntCmd)
		}
		for _, trig := range group {
			if c, ok := claims[trig]; ok && adds[trig] == nil {
				scripts[trig] = s.oom(claimScript).EvalSha(ctx, p, s.keys.Queue(trig).all(), claimArgs(now, c.Want, c.Limit, c.Lease)...)
			}
		}
	})
	for _, w := range writes {
		if werr := w.Err(); werr != nil {
			return nil, nil, nil, full(fmt.Errorf("queue: %w", werr))
		}
	}
	dheld, derr := s.dedupAdded(ctx, dedups, batches)
	if derr != nil {
		return nil, nil, nil, full(fmt.Errorf("queue: %w", derr))
	}
	aheld, aclaimed, aerrs, aerr := s.addClaimed(ctx, adds, batches, now, claims)
	var arepl *ReplicationError
	if aerr != nil && !errors.As(aerr, &arepl) {
		return nil, nil, nil, full(fmt.Errorf("queue: %w", aerr))
	}
	// The writes landed; txErr is then a claim's error (handled below) or
	// the replicas' answer.
	var repl *ReplicationError
	errors.As(txErr, &repl)
	held = make(map[string]int64, len(group))
	for trig, h := range hlens {
		held[trig] = h.Val()
	}
	maps.Copy(held, dheld)
	for trig, c := range each {
		v, _ := c.Slice()
		_, h, ok := enqueued(v, batches[trig])
		if !ok {
			return nil, nil, nil, fmt.Errorf("queue %s: %w: %d elements", trig, errReplyShape, len(v))
		}
		held[trig] = h
	}
	maps.Copy(held, aheld)
	claimed = make(map[string]ClaimResult, len(scripts)+len(aclaimed))
	maps.Copy(claimed, aclaimed)
	errs := aerrs
	for trig, c := range scripts {
		v, cerr := c.Slice()
		if isNoScript(cerr) { // Redis lost its scripts: Claim loads it
			req := claims[trig]
			var res ClaimResult
			if res, cerr = s.Claim(ctx, trig, now, req.Want, req.Limit, req.Lease); cerr == nil {
				claimed[trig] = res
				continue
			}
		} else if cerr == nil {
			var res ClaimResult
			if res, cerr = s.claimed(ctx, trig, v); cerr == nil {
				claimed[trig] = res
				continue
			}
		}
		errs = append(errs, fmt.Errorf("claim %s: %w", trig, cerr))
	}
	if repl == nil {
		// A script Redis had lost ran again, and its replicas' answer
		// is the write's (see scriptReplies).
		repl = arepl
	}
	if repl != nil {
		return held, claimed, errors.Join(errs...), fmt.Errorf("queue: %w", repl)
	}
	return held, claimed, errors.Join(errs...), nil
}

// Claimed is one attempt a claim handed to the caller.
type Claimed struct {
	ID      string
	Attempt int
	Event   []byte
	// History holds the failed attempts so far (switchyard.v1.DeadLetter bytes), or nil.
	History []byte
	// Expired is set when the attempt's lease ran out: its instance was lost.
	// The caller must record that attempt as failed, not deliver it.
	Expired bool
	// Since is when a replayed event re-entered the queue; zero otherwise.
	Since time.Time
}

// Born is when the event's current life began, the time its age (and
// max_event_age) counts from: when a replay put it back (Since), else when
// it was accepted (its id's time); zero when neither is known.
func (c Claimed) Born() time.Time {
	if !c.Since.IsZero() {
		return c.Since
	}
	return IDTime(c.ID)
}

// BreakerState is a circuit breaker's state as stored.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half"
)

// ClaimResult is what Claim found.
type ClaimResult struct {
	Items []Claimed
	// Ready is how many events still wait for an attempt.
	Ready int64
	// Held is every event the queue holds (waiting, in flight, scheduled).
	Held int64
	// NextDue is the earliest scheduled retry, zero if none.
	NextDue time.Time
	// NextLease is the earliest lease deadline, zero if none.
	NextLease time.Time
	// Breaker and BreakerUntil describe the circuit breaker.
	Breaker      BreakerState
	BreakerUntil time.Time
}

// inlineBodies is the largest claim whose events' bodies come back in the
// claim script's reply; larger claims read them with HMGET (see claimScript).
const inlineBodies = 16

// Claim starts up to want attempts for trigger, keeping at most limit in
// flight across every instance, leased for lease. See claimScript.
func (s *Store) Claim(ctx context.Context, trigger string, now time.Time, want, limit int, lease time.Duration) (ClaimResult, error) {
	var claim *redis.Cmd
	s.transaction(ctx, func(p redis.Pipeliner) []*redis.Cmd {
		claim = s.oom(claimScript).EvalSha(ctx, p, s.keys.Queue(trigger).all(), claimArgs(now, want, limit, lease)...)
		return []*redis.Cmd{claim}
	})
	v, err := claim.Slice()
	if err != nil {
		return ClaimResult{}, fmt.Errorf("claim %s: %w", trigger, err)
	}
	return s.claimed(ctx, trigger, v)
}

// AckAndClaim completes attempts, as Ack does, and then claims, as Claim
// does, in one transaction (see transaction): the scripts run one after the other, so the claim
// sees the slots the acks freed. A busy trigger's completions refill their
// slots without waiting for a second round trip.
//
// When err is not nil, acked reports whether the acks were recorded (the
// claim failed after them).
func (s *Store) AckAndClaim(ctx context.Context, trigger string, refs []AttemptRef, now time.Time, want, limit int, lease time.Duration) (res ClaimResult, stale int64, acked bool, err error) {
	keys := s.keys.Queue(trigger).all()
	var ack, claim *redis.Cmd
	s.transaction(ctx, func(p redis.Pipeliner) []*redis.Cmd {
		ack = s.oom(ackScript).EvalSha(ctx, p, keys, ackArgs(refs)...)
		claim = s.oom(claimScript).EvalSha(ctx, p, keys, claimArgs(now, want, limit, lease)...)
		return []*redis.Cmd{ack, claim}
	})
	if aerr := ack.Err(); aerr != nil {
		return ClaimResult{}, 0, false, fmt.Errorf("ack %s: %w", trigger, aerr)
	}
	// The acks are recorded and the claim made: a reply of another shape
	// (checked) costs only the stale count, not the claim.
	var acked2 int64
	if av, _ := ack.Slice(); replyInts(av, &acked2, &stale) != nil {
		stale = 0
	}
	v, cerr := claim.Slice()
	if cerr != nil {
		return ClaimResult{}, stale, true, fmt.Errorf("claim %s: %w", trigger, cerr)
	}
	res, err = s.claimed(ctx, trigger, v)
	return res, stale, true, err
}

func claimArgs(now time.Time, want, limit int, lease time.Duration) []any {
	return []any{nowMS(now), want, limit, lease.Milliseconds(), inlineBodies}
}

// claimed reads claimScript's reply v: it reads the bodies the script did
// not return and releases the attempts whose body is gone.
func (s *Store) claimed(ctx context.Context, trigger string, v []any) (ClaimResult, error) {
	if err := replyLen(v, 7); err != nil {
		return ClaimResult{}, fmt.Errorf("claim %s: %w", trigger, err)
	}
	r := ClaimResult{
		Ready: toInt64(v[1]), NextDue: msTime(v[2]), NextLease: msTime(v[3]),
		Breaker: BreakerState(toString(v[4])), BreakerUntil: msTime(v[5]), Held: toInt64(v[6]),
	}
	items, ok := v[0].([]any)
	if !ok && v[0] != nil {
		return ClaimResult{}, fmt.Errorf("claim %s: %w: items are %T", trigger, errReplyShape, v[0])
	}
	var unread []string // ids whose body the script did not return
	var gone []bool     // per item: the script found no body
	for _, it := range items {
		// A claimed item misread would be an attempt leased and never
		// made (its lease expires, it is tried again): refuse the reply.
		f, _ := it.([]any)
		if err := replyLen(f, 6); err != nil {
			return ClaimResult{}, fmt.Errorf("claim %s: item: %w", trigger, err)
		}
		a, _ := strconv.Atoi(toString(f[1]))
		c := Claimed{ID: toString(f[0]), Attempt: a, Expired: toInt64(f[3]) == 1, Since: msTime(f[4])}
		if h := toString(f[2]); h != "" {
			c.History = []byte(h)
		}
		switch body := f[5].(type) {
		case string:
			if body == "" {
				unread = append(unread, c.ID)
			} else {
				c.Event = []byte(body)
			}
			gone = append(gone, false)
		default: // false (nil): the body is gone
			gone = append(gone, true)
		}
		r.Items = append(r.Items, c)
	}
	if len(unread) > 0 {
		// Read after the claim: the leases taken keep the bodies in
		// place, unless the queue is purged meanwhile.
		bodies, err := s.rdb.HMGet(ctx, s.keys.Queue(trigger).Events, unread...).Result()
		if err != nil {
			return r, fmt.Errorf("claim %s: read events: %w (%d attempts started; their leases will expire)", trigger, err, len(r.Items))
		}
		j := 0
		for i := range r.Items {
			if r.Items[i].Event != nil || gone[i] {
				continue
			}
			if b, ok := bodies[j].(string); ok {
				r.Items[i].Event = []byte(b)
			} else {
				gone[i] = true
			}
			j++
		}
	}
	var orphans []AttemptRef
	kept := r.Items[:0]
	for i, c := range r.Items {
		if gone[i] {
			orphans = append(orphans, c.AttemptRef())
			continue
		}
		kept = append(kept, c)
	}
	r.Items = kept
	if len(orphans) > 0 {
		args := make([]any, 0, 1+2*len(orphans))
		args = append(args, 0)
		for _, o := range orphans {
			args = append(args, o.ID, o.Attempt)
		}
		if err := s.run(ctx, s.oom(orphanScript), s.keys.Queue(trigger).all(), args...).Err(); err != nil {
			return r, fmt.Errorf("claim %s: release orphans: %w", trigger, err)
		}
	}
	return r, nil
}

// AttemptRef returns the reference of the claimed attempt.
func (c Claimed) AttemptRef() AttemptRef { return AttemptRef{ID: c.ID, Attempt: c.Attempt} }

// AttemptRef names one attempt.
type AttemptRef struct {
	ID      string
	Attempt int
}

// Ack completes attempts. stale counts those no longer current (their lease
// was lost and the event rescheduled or redelivered elsewhere).
func (s *Store) Ack(ctx context.Context, trigger string, refs []AttemptRef) (acked, stale int64, err error) {
	v, err := s.run(ctx, s.oom(ackScript), s.keys.Queue(trigger).all(), ackArgs(refs)...).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("ack %s: %w", trigger, err)
	}
	if err := replyInts(v, &acked, &stale); err != nil {
		return 0, 0, fmt.Errorf("ack %s: %w", trigger, err)
	}
	return acked, stale, nil
}

// Letter is a dead letter that is not a queued event: a function's reply
// event Switchyard refused to publish.
type Letter struct {
	// Event is the reply (io.cloudevents.v1.CloudEvent bytes).
	Event []byte
	// Letter is its story (switchyard.v1.DeadLetter without the event).
	Letter []byte
}

// LetteredAck is a successful attempt whose function's refused replies go
// to the trigger's dead-letter queue.
type LetteredAck struct {
	AttemptRef
	Letters []Letter
}

// AckWithLetters completes attempts, as Ack does, and adds their letters to
// the trigger's dead-letter queue in the same script, keeping at most
// capacity entries (0: unbounded) and counting what retention evicts. The
// letters are added even for stale attempts (see ackLettersScript); a call
// repeated after a lost reply adds them twice, which is the price of never
// acknowledging without them.
func (s *Store) AckWithLetters(ctx context.Context, trigger string, capacity int64, acks []LetteredAck) (stale, evicted int64, err error) {
	var letters int
	for _, a := range acks {
		letters += len(a.Letters)
	}
	args := make([]any, 0, 2+2*letters+2*len(acks))
	args = append(args, capacity, letters)
	for _, a := range acks {
		for _, l := range a.Letters {
			args = append(args, l.Event, l.Letter)
		}
	}
	for _, a := range acks {
		args = append(args, a.ID, a.Attempt)
	}
	v, err := s.run(ctx, s.oom(ackLettersScript), s.keys.Queue(trigger).all(), args...).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("ack with dead letters %s: %w", trigger, err)
	}
	if err := replyLen(v, 3); err != nil {
		return 0, 0, fmt.Errorf("ack with dead letters %s: %w", trigger, err)
	}
	return toInt64(v[1]), toInt64(v[2]), nil
}

func ackArgs(refs []AttemptRef) []any {
	args := make([]any, 0, 1+2*len(refs))
	args = append(args, 0)
	for _, r := range refs {
		args = append(args, r.ID, r.Attempt)
	}
	return args
}

// Breaker configures the circuit breaker the failure scripts update.
type Breaker struct {
	// Threshold is the number of consecutive target failures that opens the
	// breaker; 0 disables it.
	Threshold int
	// Cooldown is how long it stays open the first time; it doubles with each
	// consecutive opening up to MaxCooldown.
	Cooldown, MaxCooldown time.Duration
}

// Retry is one failed attempt to schedule again.
type Retry struct {
	AttemptRef
	Due     time.Time
	History []byte
	// Health marks a failure that says the target is unhealthy (counted by
	// the circuit breaker), as opposed to one about this event.
	Health bool
}

// ScheduleRetries moves failed attempts to the retry schedule.
func (s *Store) ScheduleRetries(ctx context.Context, trigger string, now time.Time, b Breaker, rs []Retry) (int64, error) {
	args := make([]any, 0, 4+5*len(rs))
	args = append(args, nowMS(now), b.Threshold, b.Cooldown.Milliseconds(), b.MaxCooldown.Milliseconds())
	for _, r := range rs {
		args = append(args, r.ID, r.Attempt, nowMS(r.Due), r.History, boolArg(r.Health))
	}
	n, err := s.run(ctx, s.oom(retryScript), s.keys.Queue(trigger).all(), args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("schedule retries %s: %w", trigger, err)
	}
	return n, nil
}

// Dead is one attempt whose event goes to the dead-letter queue.
type Dead struct {
	AttemptRef
	// Letter is the story (switchyard.v1.DeadLetter without the event).
	Letter []byte
	// Failed is set when the attempt itself failed (not, say, an event that
	// expired before its attempt).
	Failed bool
	Health bool
}

// DeadLetter moves events to the trigger's dead-letter queue, keeping at
// most capacity entries (0: unbounded) and counting what retention evicts.
func (s *Store) DeadLetter(ctx context.Context, trigger string, now time.Time, b Breaker, capacity int64, ds []Dead) (dead, evicted int64, err error) {
	args := make([]any, 0, 5+5*len(ds))
	args = append(args, nowMS(now), b.Threshold, b.Cooldown.Milliseconds(), b.MaxCooldown.Milliseconds(), capacity)
	for _, d := range ds {
		args = append(args, d.ID, d.Attempt, d.Letter, boolArg(d.Failed), boolArg(d.Health))
	}
	v, err := s.run(ctx, s.oom(deadScript), s.keys.Queue(trigger).all(), args...).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("dead-letter %s: %w", trigger, err)
	}
	if err := replyInts(v, &dead, &evicted); err != nil {
		return 0, 0, fmt.Errorf("dead-letter %s: %w", trigger, err)
	}
	return dead, evicted, nil
}

func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Peek is a queue's state, read without changing it.
type Peek struct {
	Trigger      string
	Ready, Held  int64
	NextDue      time.Time
	NextLease    time.Time
	Breaker      BreakerState
	BreakerUntil time.Time
}

// PeekAll reads the state of many queues in one pipeline.
func (s *Store) PeekAll(ctx context.Context, triggers []string) ([]Peek, error) {
	cmds := make([]*redis.Cmd, len(triggers))
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) {
		for i, t := range triggers {
			cmds[i] = peekScript.EvalSha(ctx, p, s.keys.Queue(t).all())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("peek: %w", err)
	}
	out := make([]Peek, 0, len(triggers))
	for i, c := range cmds {
		v, err := c.Slice()
		if err != nil {
			continue
		}
		if err := replyLen(v, 6); err != nil {
			return nil, fmt.Errorf("peek %s: %w", triggers[i], err)
		}
		out = append(out, Peek{Trigger: triggers[i], Ready: toInt64(v[0]), Held: toInt64(v[1]), NextDue: msTime(v[2]), NextLease: msTime(v[3]), Breaker: BreakerState(toString(v[4])), BreakerUntil: msTime(v[5])})
	}
	return out, nil
}

// QueueStats are a queue's figures.
type QueueStats struct {
	Ready, InFlight, Delayed, DeadLetters int64
	// OldestReady is the id of the event waiting longest, "" if none.
	OldestReady string
	// Counters is the stats hash: enqueued, delivered, failed, dead,
	// dlq_evicted, replayed, stale, orphans, cb_state, cb_until, cb_fail, cb_opens.
	Counters map[string]string
}

// Stats reads one queue's figures.
func (s *Store) Stats(ctx context.Context, trigger string) (QueueStats, error) {
	v, err := s.run(ctx, statsScript, s.keys.Queue(trigger).all()).Slice()
	if err != nil {
		return QueueStats{}, fmt.Errorf("stats %s: %w", trigger, err)
	}
	return parseStats(trigger, v)
}

// parseStats reads statsScript's reply.
func parseStats(trigger string, v []any) (QueueStats, error) {
	if err := replyLen(v, 6); err != nil {
		return QueueStats{}, fmt.Errorf("stats %s: %w", trigger, err)
	}
	qs := QueueStats{Ready: toInt64(v[0]), InFlight: toInt64(v[1]), Delayed: toInt64(v[2]), DeadLetters: toInt64(v[3]), OldestReady: toString(v[4]), Counters: map[string]string{}}
	kv, ok := v[5].([]any)
	if !ok || len(kv)%2 != 0 {
		return QueueStats{}, fmt.Errorf("stats %s: %w: the counters are not field-value pairs", trigger, errReplyShape)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		qs.Counters[toString(kv[i])] = toString(kv[i+1])
	}
	return qs, nil
}

// IDTime returns the time an event id was accepted: ids are log entry ids
// ("<unix ms>-<seq>") or derived from one.
func IDTime(id string) time.Time {
	id = strings.TrimLeft(id, "r")
	if i := strings.IndexByte(id, '-'); i > 0 {
		if ms, err := strconv.ParseInt(id[:i], 10, 64); err == nil {
			return time.UnixMilli(ms)
		}
	}
	return time.Time{}
}
