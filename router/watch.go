package router

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
)

// watchCheckInterval is how often the watch loop compares the store's version
// with its view's, as a safety net: the notices themselves reveal almost
// every loss (see watchLoop).
const watchCheckInterval = time.Second

// subscribe subscribes to the config and wake channels and returns once the
// server confirmed it: every change made from then on reaches this instance
// as a notice (unless its connection drops, which the watch loop notices).
func (r *Router) subscribe(ctx context.Context) (*redis.PubSub, error) {
	keys := r.store.Keys()
	sub := r.store.Client().Subscribe(ctx, keys.ConfigChannel(), keys.WakeChannel())
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		return nil, err
	}
	return sub, nil
}

// watcher is the watch loop's state.
type watcher struct {
	r *Router
	// pending holds the change notices beyond the view's version, by
	// version, until the notices before them arrived.
	pending map[store.Version]string
	// reload asks for a full reload, lost for a restore first (the store
	// has no epoch); check for a comparison of versions (resynced: after a
	// reconnection, any difference means lost notices).
	reload, lost, check, resynced bool
	// behind is the store's revision the last check found ahead of the
	// view, and when: a view still short of it at the next check lost
	// notices.
	behind   store.Version
	behindAt time.Time
}

// watchLoop keeps this instance's view of the triggers exact: it serves a
// version (every change up to that revision installed) and moves it forward
// one notice at a time.
//
// The scripts that change triggers publish a notice carrying the epoch and
// revision they made in the same step, so this subscriber hears them in
// revision order. A notice right after the view's revision extends it:
// the triggers named are read from the store (with the version they were
// read at, in one step) and installed, unless the view already knows them
// at that revision (this instance made the change), and the view then
// serves the last notice's revision. Notices that arrive while a refresh
// runs are coalesced into the next one. A notice past a missing revision
// (its notice was lost: the connection dropped), a notice of another epoch
// and a reconnection of the subscription lead to a full reload, which
// reads the triggers and their version in one step. Once a second the
// loop compares the store's version with the view's: when the view is still
// short of a revision the previous check saw, notices were lost at the end
// of a burst, and it reloads; when they agree, it reads nothing more. When
// the store has no epoch at all, it lost its data: the loop writes this
// view's triggers back (restore).
//
// Every version the view reaches is handed to the cluster, which tells the
// waiting trigger changes (theirs and other instances').
func (r *Router) watchLoop(ctx context.Context, sub *redis.PubSub) {
	defer sub.Close()
	keys := r.store.Keys()
	// Large, so that a burst of changes does not make the client drop
	// notices (which would only cost a reload).
	msgs := sub.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	tick := time.NewTicker(watchCheckInterval)
	defer tick.Stop()
	w := &watcher{r: r, pending: map[store.Version]string{}}
	take := func(m any) {
		switch m := m.(type) {
		case *redis.Subscription:
			// Confirmations arrive after the first subscription and after
			// every reconnection, which may have lost notices.
			if m.Kind == "subscribe" {
				w.check, w.resynced = true, true
			}
		case *redis.Message:
			if m.Channel == keys.WakeChannel() {
				for _, name := range strings.Split(m.Payload, ",") {
					r.wake(name)
				}
				return
			}
			w.notice(m.Payload)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			take(m)
			// Whatever else already arrived joins this round.
		drain:
			for range cap(msgs) {
				select {
				case m, ok := <-msgs:
					if !ok {
						return
					}
					take(m)
				default:
					break drain
				}
			}
		case <-tick.C:
			w.check = true
		case <-r.watchKick:
			w.check = true
		}
		w.settle(ctx)
	}
}

// notice takes one config channel message.
func (w *watcher) notice(payload string) {
	n, ok := store.ParseNotice(payload)
	if !ok {
		// An instance of an older version names triggers bare: compare
		// versions now.
		w.check = true
		return
	}
	if n.Ack {
		w.r.cluster.hear(n.Instance, n.Version)
		return
	}
	view := w.r.snap.Load().ver
	switch {
	case n.Version.Epoch != view.Epoch || n.Trigger == "":
		w.reload = true
	case n.Version.Rev > view.Rev:
		w.pending[n.Version] = n.Trigger
	}
}

// settle acts on what the last messages and ticks asked for.
func (w *watcher) settle(ctx context.Context) {
	r := w.r
	if w.check {
		w.check = false
		w.compare(ctx)
	}
	if !w.reload && !w.lost {
		w.extend(ctx)
	}
	// A reload may find the store without an epoch, a restore asks for a
	// reload, and the notices after a reload may show a gap again: a few
	// rounds settle all of it, and what remains waits for the next tick.
	for range 3 {
		if w.lost {
			if !w.restore(ctx) {
				return
			}
			w.lost, w.reload = false, true
		}
		if !w.reload {
			return
		}
		err := r.reload(ctx)
		if errors.Is(err, errNoEpoch) {
			w.lost = true
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("reload triggers (retried within a second)", "err", err)
			}
			return
		}
		w.reload = false
		r.health.clear(concernTriggers)
		view := r.snap.Load().ver
		for v := range w.pending {
			if v.Epoch != view.Epoch || v.Rev <= view.Rev {
				delete(w.pending, v)
			}
		}
		w.extend(ctx)
	}
}

// compare checks the store's version against the view's.
func (w *watcher) compare(ctx context.Context) {
	r := w.r
	cur, err := r.store.CurrentVersion(ctx)
	if err != nil {
		return // the store is unreachable: readiness says so
	}
	resynced := w.resynced
	w.resynced = false
	view := r.snap.Load().ver
	switch {
	case cur.Epoch == "":
		w.lost = true
	case cur.Epoch != view.Epoch:
		w.reload = true
	case cur.Rev < view.Rev:
		r.log.Warn("the store's trigger revision went back without a new epoch; reloading the triggers", "store", cur.Rev, "view", view.Rev)
		w.reload = true
	case cur.Rev == view.Rev:
		w.behind = store.Version{}
	case resynced:
		// The subscription was re-established: notices sent meanwhile
		// are lost.
		w.reload = true
	case w.behind.Epoch == view.Epoch && w.behind.Rev > view.Rev && time.Since(w.behindAt) >= watchCheckInterval/2:
		// A check later, the view is still short of what the store had
		// then (a notice takes milliseconds): those notices were lost.
		w.reload = true
	case w.behind.Epoch != cur.Epoch || w.behind.Rev <= view.Rev:
		w.behind, w.behindAt = cur, time.Now()
	}
}

// extend moves the view forward over the notices that follow its revision
// without a gap; a gap means a lost notice, and asks for a reload.
func (w *watcher) extend(ctx context.Context) {
	if len(w.pending) == 0 {
		return
	}
	r := w.r
	view := r.snap.Load()
	last := map[string]int64{} // trigger → its last notice in the run
	next := store.Version{Epoch: view.ver.Epoch, Rev: view.ver.Rev + 1}
	for {
		name, ok := w.pending[next]
		if !ok {
			break
		}
		delete(w.pending, next)
		last[name] = next.Rev
		next.Rev++
	}
	upTo := next.Rev - 1
	if len(w.pending) > 0 {
		// Notices past a revision never heard of: it was lost.
		w.reload = true
		return
	}
	var names []string
	for name, rev := range last {
		if view.knownAt(name) < rev {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		r.install(view.ver.Epoch, upTo)
		return
	}
	stored, at, err := r.store.GetTriggersAt(ctx, names)
	if err != nil || at.Epoch != view.ver.Epoch {
		if err != nil && ctx.Err() == nil {
			r.log.Warn("refresh triggers (reloading them all)", "err", err)
		}
		w.reload = true
		return
	}
	changes := make([]localChange, 0, len(names))
	for i, p := range stored {
		c := localChange{name: names[i], at: at.Rev}
		if p != nil {
			if c.t = r.compileStored(p); c.t == nil {
				continue // logged; the view keeps what it had
			}
		}
		changes = append(changes, c)
	}
	r.install(view.ver.Epoch, upTo, changes...)
}

// restore writes this view's triggers back into a store that lost its data
// (it has no epoch), founding a new epoch, unless another instance did
// first; the caller then reloads the view. Until the reload succeeded,
// readiness reports it. False when the store could not be written.
func (w *watcher) restore(ctx context.Context) bool {
	r := w.r
	r.health.set(concernTriggers, "the store lost its data; restoring the trigger definitions")
	snap := r.snap.Load()
	list := make([]*switchyardv1.Trigger, 0, len(snap.triggers))
	for _, t := range snap.triggers {
		if t.Stored != nil {
			list = append(list, t.Stored)
		}
	}
	epoch, founded, written, err := r.store.Restore(ctx, list)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("restore the triggers into the store (retried within a second)", "err", err)
		}
		return false
	}
	if founded {
		r.log.Warn("the store lost its data (no epoch): restored the triggers from this instance's view",
			"epoch", epoch, "triggers", len(list), "written", written)
	}
	return true
}
