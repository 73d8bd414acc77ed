package router

import (
	"context"
	"strings"
	"time"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// snapshot is an immutable view of the triggers.
type snapshot struct {
	rev      int64
	triggers map[string]*trigger.Trigger
	index    *filter.Index
}

func emptySnapshot() *snapshot {
	return &snapshot{triggers: map[string]*trigger.Trigger{}, index: filter.NewIndex(nil)}
}

// Trigger returns the compiled trigger, or nil.
func (r *Router) Trigger(name string) *trigger.Trigger { return r.snap.Load().triggers[name] }

// Reload re-reads the triggers from the store now. Instances also reload on
// their own within a second of any change.
func (r *Router) Reload(ctx context.Context) error { return r.reload(ctx) }

// reload reads every trigger, compiles it, swaps the snapshot and reconciles
// the dispatchers.
func (r *Router) reload(ctx context.Context) error {
	list, rev, err := r.store.ListTriggers(ctx)
	if err != nil {
		return err
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	old := r.snap.Load()
	s := &snapshot{rev: rev, triggers: make(map[string]*trigger.Trigger, len(list))}
	entries := make([]filter.Entry, 0, len(list))
	for _, p := range list {
		if ot := old.triggers[p.GetName()]; ot != nil && ot.Generation == p.GetGeneration() {
			s.triggers[p.GetName()] = ot
			entries = append(entries, filter.Entry{Name: ot.Name(), Spec: ot.Spec.Filter, Filter: ot.Filter})
			continue
		}
		t, err := trigger.Compile(trigger.FromProto(p))
		if err != nil {
			r.log.Error("stored trigger does not compile; it is skipped", "trigger", p.GetName(), "err", err)
			continue
		}
		t.Generation = p.GetGeneration()
		s.triggers[t.Name()] = t
		entries = append(entries, filter.Entry{Name: t.Name(), Spec: t.Spec.Filter, Filter: t.Filter})
	}
	s.index = filter.NewIndex(entries)
	r.snap.Store(s)
	r.reconcile(s)
	return nil
}

// ApplyLocal puts one stored trigger into this instance's view at once,
// without re-reading every trigger (other instances follow the change notice
// within a second). A nil compile error means it is live here.
func (r *Router) ApplyLocal(p *switchyardv1.Trigger) error {
	t, err := trigger.Compile(trigger.FromProto(p))
	if err != nil {
		return err
	}
	t.Generation = p.GetGeneration()
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	old := r.snap.Load()
	if ot := old.triggers[t.Name()]; ot != nil && ot.Generation >= t.Generation {
		return nil
	}
	r.swapLocked(old, func(m map[string]*trigger.Trigger) { m[t.Name()] = t })
	return nil
}

// RemoveLocal drops a deleted trigger from this instance's view at once.
func (r *Router) RemoveLocal(name string) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	r.swapLocked(r.snap.Load(), func(m map[string]*trigger.Trigger) { delete(m, name) })
}

// swapLocked copies the snapshot, edits the copy, rebuilds the index and
// installs it. The revision is marked unknown so the next poll re-reads the
// store and settles any difference.
func (r *Router) swapLocked(old *snapshot, edit func(map[string]*trigger.Trigger)) {
	m := make(map[string]*trigger.Trigger, len(old.triggers)+1)
	for k, v := range old.triggers {
		m[k] = v
	}
	edit(m)
	entries := make([]filter.Entry, 0, len(m))
	for _, t := range m {
		entries = append(entries, filter.Entry{Name: t.Name(), Spec: t.Spec.Filter, Filter: t.Filter})
	}
	s := &snapshot{rev: -1, triggers: m, index: filter.NewIndex(entries)}
	r.snap.Store(s)
	r.reconcile(s)
}

// reconcile starts, updates and stops dispatchers to match the snapshot.
func (r *Router) reconcile(s *snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping.Load() {
		return
	}
	for name, t := range s.triggers {
		if d, ok := r.dispatchers[name]; ok {
			if d.trig.Swap(t) != t { // a changed policy may free slots
				d.poke()
			}
			continue
		}
		d := newDispatcher(r, t)
		r.dispatchers[name] = d
		d.start()
	}
	for name, d := range r.dispatchers {
		if _, ok := s.triggers[name]; !ok {
			d.stop()
			delete(r.dispatchers, name)
		}
	}
}

// watchLoop reloads the triggers on change notices and, as a safety net
// against lost notices, whenever the revision moved; it also routes wake-up
// notices from other instances to the dispatchers.
func (r *Router) watchLoop(ctx context.Context) {
	keys := r.store.Keys()
	sub := r.store.Client().Subscribe(ctx, keys.ConfigChannel(), keys.WakeChannel())
	defer sub.Close()
	msgs := sub.Channel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Change notices are coalesced: a burst of changes (a thousand triggers
	// applied) costs one reload, 100 ms after the burst's first notice.
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if m.Channel == keys.WakeChannel() {
				for _, name := range strings.Split(m.Payload, ",") {
					r.wake(name)
				}
				continue
			}
			if !pending {
				pending = true
				debounce.Reset(100 * time.Millisecond)
			}
		case <-debounce.C:
			pending = false
			if err := r.reload(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reload triggers", "err", err)
			}
		case <-tick.C:
			rev, err := r.store.Revision(ctx)
			if err != nil || rev == r.snap.Load().rev {
				continue
			}
			if err := r.reload(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reload triggers", "err", err)
			}
		}
	}
}

// Wake tells this instance's and every other instance's dispatcher of the
// trigger that its queue has new work (after a replay, say).
func (r *Router) Wake(name string) {
	r.wake(name)
	r.store.Client().Publish(r.intakeCtx, r.store.Keys().WakeChannel(), name)
}

func (r *Router) wake(name string) {
	r.mu.Lock()
	d := r.dispatchers[name]
	r.mu.Unlock()
	if d != nil {
		d.poke()
	}
}
