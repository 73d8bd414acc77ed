package router

import (
	"context"
	"time"

	"github.com/switchyard-io/switchyard/internal/panics"
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
	gens := r.depthGens(names...)
	if admitted, err := r.store.Admitted(ctx); err == nil {
		r.depthMu.Lock()
		for _, n := range names {
			if d := r.depth[n]; d.gen == gens[n] {
				d.logged = admitted[n]
				r.depth[n] = d
			}
		}
		r.depthMu.Unlock()
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
			r.setDepth(p.Trigger, p.Held, gens[p.Trigger])
			due := (!p.NextDue.IsZero() && !p.NextDue.After(now)) || (!p.NextLease.IsZero() && !p.NextLease.After(now))
			if p.Ready > 0 || due {
				r.wake(p.Trigger)
			}
		}
	}
}

// trimDLQs evicts dead letters older than their trigger's
// dead_letter_max_age (or DLQMaxAge) and beyond its dead_letter_max_entries
// (or DLQMaxEntries: a cap lowered since the last dead letter), counting
// them. The store evicts in bounded steps, so a large eviction does not
// hold Redis.
func (r *Router) trimDLQs(ctx context.Context) {
	for name, t := range r.snap.Load().triggers {
		age := r.cfg.DLQMaxAge
		if a := t.Spec.Delivery.DeadLetterMaxAge.Duration; a > 0 {
			age = a
		}
		n, err := r.store.TrimDLQ(ctx, name, time.Now().Add(-age))
		if err != nil {
			return
		}
		if n > 0 {
			r.log.Info("dead letters evicted by age", "trigger", name, "evicted", n, "max_age", age)
		}
		capacity := r.cfg.DLQMaxEntries
		if c := t.Spec.Delivery.DeadLetterMaxEntries; c > 0 {
			capacity = c
		}
		n, err = r.store.CapDLQ(ctx, name, capacity)
		if err != nil {
			return
		}
		if n > 0 {
			r.log.Warn("dead-letter queue full: oldest entries evicted", "trigger", name, "evicted", n, "max_entries", capacity)
		}
	}
}

// checkPeers records whether another instance listens for wake-ups; they are
// published only then.
func (r *Router) checkPeers(ctx context.Context) {
	n, err := r.store.Subscribers(ctx, r.store.Keys().WakeChannel())
	r.peers.Store(err != nil || n > 1)
}
