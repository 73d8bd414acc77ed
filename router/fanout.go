package router

import (
	"context"
	"time"

	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/router/store"
)

// fanoutLoop moves accepted events from the ingest log into the queues of the
// triggers they matched. A record is acknowledged (and deleted) only after
// every queue has it; a crash in between leaves it pending, and another
// instance (or this one after a restart) takes it over after LogClaimIdle.
// Queuing is idempotent per record id, so a takeover queues nothing twice
// unless the event was already delivered and forgotten in between.
func (r *Router) fanoutLoop(ctx context.Context) {
	consumer := r.cfg.InstanceID
	var wait time.Duration
	fails := 0 // consecutive failed reads
	lastClaim := time.Now()
	for ctx.Err() == nil {
		var recs []store.LogRecord
		var err error
		if time.Since(lastClaim) > r.cfg.LogClaimIdle/3 {
			lastClaim = time.Now()
			recs, err = r.store.ClaimStaleLog(ctx, consumer, r.cfg.LogClaimIdle, r.cfg.FanoutBatch)
			if err == nil && len(recs) > 0 {
				r.log.Info("took over unfinished fan-out records", "count", len(recs))
			}
		}
		if err == nil && len(recs) == 0 {
			recs, err = r.store.ReadLog(ctx, consumer, r.cfg.FanoutBatch, time.Second)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// One failure may be a blip; a second in a row (the log's
			// group could not be recreated, Redis refuses writes…) means
			// accepted events are not moving.
			if fails++; fails >= 2 {
				r.health.set(concernFanout, "cannot read the ingest log: "+err.Error())
			}
			wait = nextBackoff(wait)
			r.log.Warn("read ingest log", "err", err, "retry_in", wait)
			backoffSleep(ctx, wait)
			continue
		}
		if fails > 0 {
			fails = 0
			r.health.clear(concernFanout)
		}
		wait = 0
		if len(recs) == 0 {
			continue
		}
		r.fanout(ctx, recs)
	}
}

// fanout queues one batch, retrying until it succeeds or ctx ends (the
// records then stay pending in the log for a later takeover).
func (r *Router) fanout(ctx context.Context, recs []store.LogRecord) {
	panics.Hook("router.fanout")
	batches := map[string][]store.Item{}
	gone := r.deletedTriggers(ctx, recs)
	for _, rec := range recs {
		for _, t := range rec.Triggers {
			if gone[t] {
				// Deleted since the event was accepted: it no longer routes.
				r.metrics.droppedDeleted.Inc()
				continue
			}
			batches[t] = append(batches[t], store.Item{ID: rec.ID, Event: rec.Event, Due: rec.Due})
		}
	}
	r.laneItems(batches)
	r.stampDedup(batches)
	var wait time.Duration
	fails := 0
	for {
		// Use a context that survives shutdown for the write itself, so a
		// batch in progress completes.
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		held, err := r.store.Enqueue(wctx, batches)
		if store.IsFull(err) {
			// Redis is out of memory: queue anyway into queues that
			// delivery has drained (nearly) empty, or the log could hold
			// all the memory with nothing left to deliver.
			held, err = r.store.EnqueueWhenFull(wctx, int64(r.cfg.FanoutBatch), batches)
		}
		if err == nil {
			err = r.store.AckLog(wctx, recs)
			fromLog := make(map[string]int64, len(batches))
			dups := r.countDuplicates(batches)
			for t, items := range batches {
				fromLog[t] = int64(len(items))
				r.metrics.trigger(t).add(cEnqueued, float64(len(items)-dups[t]))
			}
			r.queued(wctx, held, fromLog, nil)
			r.wakePeersForDelayed(wctx, batches)
			cancel()
			if err != nil {
				r.log.Warn("acknowledge ingest log (records will be taken over later)", "err", err)
			}
			r.metrics.fannedOut.Add(float64(len(recs)))
			if fails >= 2 {
				r.health.clear(concernFanout)
			}
			return
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if fails++; fails >= 2 {
			r.health.set(concernFanout, "cannot queue accepted events for their triggers: "+err.Error())
		}
		wait = nextBackoff(wait)
		r.log.Warn("queue events for triggers", "err", err, "retry_in", wait)
		if !backoffSleep(ctx, wait) {
			return
		}
	}
}

// deletedTriggers returns the triggers named by recs that no longer exist.
// A name this instance does not know may be a trigger created moments ago on
// another instance, so the store decides; when it cannot be asked, nothing
// is considered deleted.
func (r *Router) deletedTriggers(ctx context.Context, recs []store.LogRecord) map[string]bool {
	snap := r.snap.Load()
	var unknown []string
	seen := map[string]bool{}
	for _, rec := range recs {
		for _, t := range rec.Triggers {
			if snap.triggers[t] == nil && !seen[t] {
				seen[t] = true
				unknown = append(unknown, t)
			}
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	exists, err := r.store.TriggersExist(ctx, unknown)
	if err != nil {
		return nil
	}
	gone := map[string]bool{}
	for i, t := range unknown {
		if !exists[i] {
			gone[t] = true
		}
	}
	return gone
}
