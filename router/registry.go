package router

import (
	"context"
	"slices"
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
	index    *routeIndex
}

func emptySnapshot() *snapshot {
	return &snapshot{triggers: map[string]*trigger.Trigger{}, index: &routeIndex{base: filter.NewIndex(nil)}}
}

// foldAt is how many changed triggers the small layer of a routeIndex holds
// before they are folded into a new base.
const foldAt = 256

// routeIndex finds the triggers an event matches: a base filter.Index over
// the triggers as they were at the last full build, and a small one over
// the triggers changed (or removed: shadow) since. A full build costs time in
// proportion to the number of triggers, so applying 10,000 triggers one by
// one rebuilt ~10,000 × 10,000 entries; a change now rebuilds only the small
// layer, and every foldAt changes the base.
type routeIndex struct {
	base   *filter.Index
	delta  *filter.Index       // nil when no trigger changed since base
	shadow map[string]struct{} // names in the small layer, changed or removed
}

// Match appends to dst the names of the triggers matching the event, in name
// order.
func (x *routeIndex) Match(in *filter.Input, dst []string) []string {
	if x.delta == nil {
		return x.base.Match(in, dst)
	}
	start := len(dst)
	dst = x.base.Match(in, dst)
	k := start
	for _, n := range dst[start:] {
		if _, stale := x.shadow[n]; !stale {
			dst[k] = n
			k++
		}
	}
	dst = dst[:k]
	mid := len(dst)
	dst = x.delta.Match(in, dst)
	if mid > start && len(dst) > mid {
		slices.Sort(dst[start:])
	}
	return dst
}

// update returns the index of triggers m, of which the named ones changed
// since x was built.
func (x *routeIndex) update(m map[string]*trigger.Trigger, changed []string) *routeIndex {
	if len(x.shadow)+len(changed) > foldAt {
		return &routeIndex{base: filter.NewIndex(entriesOf(m, nil))}
	}
	shadow := make(map[string]struct{}, len(x.shadow)+len(changed))
	for n := range x.shadow {
		shadow[n] = struct{}{}
	}
	for _, n := range changed {
		shadow[n] = struct{}{}
	}
	return &routeIndex{base: x.base, delta: filter.NewIndex(entriesOf(m, shadow)), shadow: shadow}
}

// entriesOf returns the index entries of triggers m, only of those named in
// only unless it is nil.
func entriesOf(m map[string]*trigger.Trigger, only map[string]struct{}) []filter.Entry {
	var entries []filter.Entry
	add := func(t *trigger.Trigger) {
		entries = append(entries, filter.Entry{Name: t.Name(), Spec: t.Spec.Filter, Filter: t.Filter})
	}
	if only == nil {
		entries = make([]filter.Entry, 0, len(m))
		for _, t := range m {
			add(t)
		}
		return entries
	}
	for n := range only {
		if t := m[n]; t != nil {
			add(t)
		}
	}
	return entries
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
	for _, p := range list {
		if ot := old.triggers[p.GetName()]; ot != nil && ot.Generation == p.GetGeneration() {
			s.triggers[p.GetName()] = ot
			continue
		}
		if t := r.compileStored(p); t != nil {
			s.triggers[t.Name()] = t
		}
	}
	s.index = &routeIndex{base: filter.NewIndex(entriesOf(s.triggers, nil))}
	r.snap.Store(s)
	r.reconcile(s, nil)
	return nil
}

// compileStored compiles a trigger read from the store, or logs why it
// cannot and returns nil (the trigger is skipped).
func (r *Router) compileStored(p *switchyardv1.Trigger) *trigger.Trigger {
	t, err := trigger.Compile(trigger.FromProto(p))
	if err != nil {
		r.log.Error("stored trigger does not compile; it is skipped", "trigger", p.GetName(), "err", err)
		return nil
	}
	t.Generation = p.GetGeneration()
	return t
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
	r.install(localChange{t: t})
	return nil
}

// RemoveLocal drops a deleted trigger from this instance's view at once.
func (r *Router) RemoveLocal(name string) { r.install(localChange{remove: name}) }

// localChange is one change to this instance's view of the triggers.
type localChange struct {
	t      *trigger.Trigger // install t, unless the view has its generation or a newer one
	remove string           // or drop the trigger of this name
}

// changeReq is a caller of install waiting for its changes to be live.
type changeReq struct {
	changes []localChange
	done    chan struct{}
}

// install makes changes live in this instance's view and returns once they
// are. Rebuilding the view costs time in proportion to the number of
// triggers, so concurrent callers share rebuilds: whoever gets the lock
// installs every change queued so far (registering 10,000 triggers went from
// quadratic to a rebuild per burst of concurrent applies).
func (r *Router) install(changes ...localChange) {
	req := &changeReq{changes: changes, done: make(chan struct{})}
	r.pendMu.Lock()
	r.pending = append(r.pending, req)
	r.pendMu.Unlock()
	r.reloadMu.Lock()
	r.pendMu.Lock()
	batch := r.pending
	r.pending = nil
	r.pendMu.Unlock()
	if len(batch) > 0 {
		r.swapLocked(r.snap.Load(), func(m map[string]*trigger.Trigger) (changed []string) {
			for _, q := range batch {
				for _, c := range q.changes {
					if c.t == nil {
						if _, ok := m[c.remove]; ok {
							delete(m, c.remove)
							changed = append(changed, c.remove)
						}
						continue
					}
					if ot := m[c.t.Name()]; ot != nil && ot.Generation >= c.t.Generation {
						continue
					}
					m[c.t.Name()] = c.t
					changed = append(changed, c.t.Name())
				}
			}
			return changed
		})
		for _, q := range batch {
			close(q.done)
		}
	}
	r.reloadMu.Unlock()
	<-req.done // closed by this call or by the one that took it first
}

// refresh re-reads the named triggers (from change notices) and installs
// them, or drops those gone. Triggers that do not compile are logged and
// left as they were.
func (r *Router) refresh(ctx context.Context, names []string) error {
	stored, err := r.store.GetTriggers(ctx, names)
	if err != nil {
		return err
	}
	changes := make([]localChange, 0, len(names))
	for i, p := range stored {
		if p == nil {
			changes = append(changes, localChange{remove: names[i]})
			continue
		}
		if t := r.compileStored(p); t != nil {
			changes = append(changes, localChange{t: t})
		}
	}
	r.install(changes...)
	return nil
}

// swapLocked copies the snapshot, edits the copy and, if the edit changed
// anything, installs it with its index updated, and starts or stops the
// changed triggers' dispatchers. The revision is marked unknown so the next
// poll re-reads the store and settles any difference.
func (r *Router) swapLocked(old *snapshot, edit func(map[string]*trigger.Trigger) (changed []string)) {
	m := make(map[string]*trigger.Trigger, len(old.triggers)+1)
	for k, v := range old.triggers {
		m[k] = v
	}
	changed := edit(m)
	if len(changed) == 0 {
		return
	}
	s := &snapshot{rev: -1, triggers: m, index: old.index.update(m, changed)}
	r.snap.Store(s)
	r.reconcile(s, changed)
}

// reconcile starts, updates and stops dispatchers to match the snapshot:
// those of the named triggers, or all of them when names is nil.
func (r *Router) reconcile(s *snapshot, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping.Load() {
		return
	}
	apply := func(name string) {
		t, live := s.triggers[name]
		d, running := r.dispatchers[name]
		switch {
		case live && running:
			if d.trig.Swap(t) != t { // a changed policy may free slots
				d.poke()
			}
		case live:
			d := newDispatcher(r, t)
			r.dispatchers[name] = d
			d.start()
		case running:
			d.stop()
			delete(r.dispatchers, name)
		}
	}
	if names != nil {
		for _, n := range names {
			apply(n)
		}
		return
	}
	for name := range s.triggers {
		apply(name)
	}
	for name := range r.dispatchers {
		if _, ok := s.triggers[name]; !ok {
			apply(name)
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
	// applied) costs one refresh of the triggers named, 100 ms after the
	// burst's first notice. The once-a-second revision check reloads
	// everything when a notice was missed (and after a refresh, whose
	// revision is unknown).
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	changed := map[string]bool{}
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
			if len(changed) == 0 {
				debounce.Reset(100 * time.Millisecond)
			}
			changed[m.Payload] = true
		case <-debounce.C:
			names := make([]string, 0, len(changed))
			for n := range changed {
				names = append(names, n)
			}
			clear(changed)
			if err := r.refresh(ctx, names); err != nil && ctx.Err() == nil {
				r.log.Warn("refresh triggers", "err", err)
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
