package router

import (
	"context"
	"time"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// sweepLoop checks every trigger's queue each SweepInterval: it refreshes the
// depth used for admission and wakes dispatchers whose queue has work this
// instance was not told about (retries scheduled or leases lost by another
// instance, events queued while a wake-up notice was lost).
func (r *Router) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(r.cfg.SweepInterval)
	defer tick.Stop()
	lastTrim := time.Time{}
	lastFull := time.Time{}
	for {
		// With no other instance on the store, nothing this instance was not
		// told about can happen (its own wake-ups and timers cover it), so
		// the full sweep runs only every tenth interval; it also runs more
		// rarely with many triggers, at most 5,000 queues a second.
		every := r.cfg.SweepInterval * time.Duration(max(1, len(r.snap.Load().triggers)/5000))
		if !r.peers.Load() {
			every *= 10
		}
		if time.Since(lastFull) >= every {
			lastFull = time.Now()
			r.sweep(ctx)
		} else {
			r.checkPeers(ctx)
		}
		r.flushSuppressed()
		if time.Since(lastTrim) > time.Minute {
			lastTrim = time.Now()
			r.trimDLQs(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *Router) sweep(ctx context.Context) {
	panics.Hook("router.sweep")
	snap := r.snap.Load()
	names := make([]string, 0, len(snap.triggers))
	for n := range snap.triggers {
		names = append(names, n)
	}
	now := time.Now()
	r.checkPeers(ctx)
	// Depths read here are applied only to triggers this instance did not
	// queue or accept events for meanwhile: a read overtaken by a local write
	// would count events twice (or not at all) until the next sweep.
	gens := r.backlog.gens(names)
	if admitted, err := r.store.Admitted(ctx); err == nil {
		r.backlog.observeLogged(admitted, names, gens)
	}
	for len(names) > 0 && ctx.Err() == nil {
		chunk := names[:min(500, len(names))]
		names = names[len(chunk):]
		peeks, err := r.store.PeekAll(ctx, chunk)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("sweep", "err", err)
			}
			return
		}
		for _, p := range peeks {
			r.backlog.observe(p.Trigger, p.Held, gens[p.Trigger])
			due := (!p.NextDue.IsZero() && !p.NextDue.After(now)) || (!p.NextLease.IsZero() && !p.NextLease.After(now))
			if p.Ready > 0 || due {
				r.wake(p.Trigger)
			}
		}
	}
}

// trimDLQs applies each trigger's dead-letter retention (the server's
// dlq.Policy, overridden by the trigger's dead_letter_max_age and
// dead_letter_max_entries): entries older than the age limit, and beyond
// the size limit (a cap lowered since the last dead letter), are evicted
// and counted. The store evicts in bounded steps, pipelined across
// triggers, so a large eviction does not hold Redis and many triggers do
// not cost a round trip each.
func (r *Router) trimDLQs(ctx context.Context) {
	snap := r.snap.Load()
	now := time.Now()
	rs := make([]dlq.Retention, 0, len(snap.triggers))
	for name, t := range snap.triggers {
		rs = append(rs, r.dlqPolicy(t).Retention(name, now))
	}
	_ = dlq.Retain(ctx, r.store, rs, func(e dlq.Evicted) {
		pol := r.dlqPolicy(snap.triggers[e.Trigger])
		if e.Aged > 0 {
			r.log.Info("dead letters evicted by age", "trigger", e.Trigger, "evicted", e.Aged, "max_age", pol.MaxAge)
		}
		if e.Capped > 0 {
			r.log.Warn("dead-letter queue full: oldest entries evicted", "trigger", e.Trigger, "evicted", e.Capped, "max_entries", pol.MaxEntries)
		}
		if e.Err != nil && ctx.Err() == nil && r.logAllowed(e.Trigger, "retain", "", "dead-letter retention") {
			r.log.Warn("dead-letter retention", "trigger", e.Trigger, "err", e.Err)
		}
	})
}

// dlqPolicy is trigger t's dead-letter retention.
func (r *Router) dlqPolicy(t *trigger.Trigger) dlq.Policy {
	d := t.Spec.Delivery
	return r.cfg.DLQ().For(d.DeadLetterMaxEntries, d.DeadLetterMaxAge.Duration)
}

// checkPeers records whether another instance listens for wake-ups; they are
// published only then.
func (r *Router) checkPeers(ctx context.Context) {
	n, err := r.store.Subscribers(ctx, r.store.Keys().WakeChannel())
	r.peers.Store(err != nil || n > 1)
}
