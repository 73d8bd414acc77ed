package router

import (
	"context"
	"reflect"
	"slices"

	"google.golang.org/protobuf/proto"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// snapshot is an immutable view of the triggers.
//
// It serves ver: every change of ver's epoch up to ver.Rev is installed.
// Changes beyond it may be installed too (those this instance made, and
// those read from the store while catching up); known holds the revision at
// which each such trigger's state was read or written, absent triggers
// included, so that an older state never replaces a newer one (a refresh
// that read the store before this instance's own change was installed, a
// local change that finished after a refresh read a later one). A trigger
// not in known is as it was at ver.Rev.
type snapshot struct {
	ver      store.Version
	known    map[string]int64
	triggers map[string]*trigger.Trigger
	index    *routeIndex
}

// knownAt is the revision at which the view knows the named trigger's state.
func (s *snapshot) knownAt(name string) int64 {
	if at, ok := s.known[name]; ok {
		return at
	}
	return s.ver.Rev
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
		entries = append(entries, filter.Entry{Name: t.Name(), Spec: t.Match, Filter: t.Filter})
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

// Reload re-reads the triggers from the store now. Instances follow every
// change on their own (see watch.go).
func (r *Router) Reload(ctx context.Context) error { return r.reload(ctx) }

// errNoEpoch means the store has no epoch: it lost its data (see watch.go).
var errNoEpoch = store.ErrNoEpoch

// reload reads every trigger and the version they were read at in one step,
// compiles them, swaps the snapshot and reconciles the dispatchers. Changes
// of the same epoch this view installed beyond that version stay.
func (r *Router) reload(ctx context.Context) error {
	list, ver, err := r.store.ListTriggers(ctx)
	if err != nil {
		return err
	}
	if ver.Epoch == "" {
		return errNoEpoch
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	old := r.snap.Load()
	s := &snapshot{ver: ver, known: map[string]int64{}, triggers: make(map[string]*trigger.Trigger, len(list))}
	for _, p := range list {
		if ot := old.triggers[p.GetName()]; ot != nil && sameStored(ot, p) {
			s.triggers[p.GetName()] = ot
			continue
		}
		if t := r.compileStored(p); t != nil {
			s.triggers[t.Name()] = t
		}
	}
	if old.ver.Epoch == ver.Epoch {
		for name, at := range old.known {
			if at <= ver.Rev {
				continue
			}
			s.known[name] = at
			if t := old.triggers[name]; t != nil {
				s.triggers[name] = t
			} else {
				delete(s.triggers, name)
			}
		}
	}
	s.index = &routeIndex{base: filter.NewIndex(entriesOf(s.triggers, nil))}
	r.snap.Store(s)
	r.reconcile(s, nil)
	r.cluster.setServed(s.ver)
	return nil
}

// sameStored reports whether t was compiled from stored message p.
func sameStored(t *trigger.Trigger, p *switchyardv1.Trigger) bool {
	if t.Stored == nil {
		return false
	}
	return proto.Equal(t.Stored, p)
}

// compile compiles a stored trigger.
func compile(p *switchyardv1.Trigger) (*trigger.Trigger, error) {
	t, err := trigger.Compile(trigger.FromProto(p))
	if err != nil {
		return nil, err
	}
	t.Generation = p.GetGeneration()
	t.Stored = p
	return t, nil
}

// compileStored compiles a trigger read from the store, or logs why it
// cannot and returns nil (the trigger is skipped).
func (r *Router) compileStored(p *switchyardv1.Trigger) *trigger.Trigger {
	t, err := compile(p)
	if err != nil {
		r.log.Error("stored trigger does not compile; it is skipped", "trigger", p.GetName(), "err", err)
		return nil
	}
	return t
}

// localChange is one trigger's state at a revision, to install in the view.
type localChange struct {
	name string
	t    *trigger.Trigger // nil: no trigger of that name
	at   int64            // revision at which this is its state
}

// changeReq is a caller of install waiting for its changes to be live.
type changeReq struct {
	epoch   string // the changes are of this epoch (ignored otherwise)
	changes []localChange
	advance int64 // then the view serves this revision (0: unchanged)
	done    chan struct{}
}

// install makes changes of epoch live in this instance's view, each unless
// the view knows that trigger at its revision or a later one, then (with
// advance > 0) records that the view serves revision advance; it returns
// once that is done. Changes of another epoch than the view's are dropped:
// the watch loop reloads the view on its own when the epoch changed.
//
// Rebuilding the view costs time in proportion to the number of triggers,
// so concurrent callers share rebuilds: whoever gets the lock installs every
// change queued so far (registering 10,000 triggers went from quadratic to a
// rebuild per burst of concurrent applies).
func (r *Router) install(epoch string, advance int64, changes ...localChange) {
	req := &changeReq{epoch: epoch, changes: changes, advance: advance, done: make(chan struct{})}
	r.pendMu.Lock()
	r.pending = append(r.pending, req)
	r.pendMu.Unlock()
	r.reloadMu.Lock()
	r.pendMu.Lock()
	batch := r.pending
	r.pending = nil
	r.pendMu.Unlock()
	if len(batch) > 0 {
		r.installLocked(batch)
		for _, q := range batch {
			close(q.done)
		}
	}
	r.reloadMu.Unlock()
	<-req.done // closed by this call or by the one that took it first
}

// installLocked applies a batch of install requests in one new snapshot;
// reloadMu is held.
func (r *Router) installLocked(batch []*changeReq) {
	old := r.snap.Load()
	ver := old.ver
	known := make(map[string]int64, len(old.known)+len(batch))
	for n, at := range old.known {
		known[n] = at
	}
	var m map[string]*trigger.Trigger // copied on the first change
	var changed []string
	for _, q := range batch {
		if q.epoch != ver.Epoch {
			continue
		}
		for _, c := range q.changes {
			at, ok := known[c.name]
			if !ok {
				at = ver.Rev
			}
			if c.at <= at {
				continue // the view knows a state as recent
			}
			known[c.name] = c.at
			cur := old.triggers[c.name]
			if m != nil {
				cur = m[c.name]
			}
			if (c.t == nil && cur == nil) || (c.t != nil && cur != nil && c.t.Stored != nil && sameStored(cur, c.t.Stored)) {
				continue
			}
			if m == nil {
				m = make(map[string]*trigger.Trigger, len(old.triggers)+1)
				for k, v := range old.triggers {
					m[k] = v
				}
			}
			if c.t == nil {
				delete(m, c.name)
			} else {
				m[c.name] = c.t
			}
			changed = append(changed, c.name)
		}
		ver.Rev = max(ver.Rev, q.advance)
	}
	for n, at := range known {
		if at <= ver.Rev {
			delete(known, n)
		}
	}
	s := &snapshot{ver: ver, known: known, triggers: old.triggers, index: old.index}
	if len(changed) > 0 {
		s.triggers, s.index = m, old.index.update(m, changed)
	}
	r.snap.Store(s)
	if len(changed) > 0 {
		r.reconcile(s, changed)
	}
	if ver != old.ver {
		r.cluster.setServed(ver)
	}
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
		if live && t.Spec.Target.IsPull() {
			live = false // consumers claim its events (pull.go): no dispatcher
		}
		// Consumers look at the change: a deleted trigger, or one no
		// longer pull, ends them.
		defer r.pokePull(name)
		d, running := r.dispatchers[name]
		switch {
		case live && running:
			if old := d.trig.Swap(t); old != t { // a changed policy may free slots
				if !reflect.DeepEqual(old.Spec.Target, t.Spec.Target) {
					r.forgetTarget(name, false)
				}
				d.poke()
			}
		case live:
			r.forgetTarget(name, false)
			d := newDispatcher(r, t)
			r.dispatchers[name] = d
			d.start()
		case running:
			d.stop()
			delete(r.dispatchers, name)
			// The trigger is gone: so are its series (its gauges
			// disappear with it from the view, see queueCollector).
			r.metrics.forget(name)
			r.forgetTarget(name, true)
		}
		if _, exists := s.triggers[name]; !exists {
			// A pull trigger has no dispatcher, yet its consumers'
			// outcomes counted under its name.
			r.metrics.forget(name)
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

// forgetTarget tells the invoker that a trigger's target changed or the
// trigger is gone, so that a broker publisher no trigger uses any more is
// closed (see delivery.TargetForgetter).
func (r *Router) forgetTarget(name string, gone bool) {
	if f, ok := r.invoker.(delivery.TargetForgetter); ok {
		f.ForgetTrigger(name, gone)
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
	r.pokePull(name)
}
