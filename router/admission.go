package router

import "sync"

// backlog owns each trigger's estimated backlog, the figure admission
// control compares with the trigger's max_queue (admit). It is the one
// place that figure lives; its contract:
//
//   - The estimate of a trigger is held + logged: the events its queue held
//     when the store last said, plus the events accepted into the ingest log
//     and not yet fanned out (the store's admitted counts, plus those this
//     instance accepted since it last read them). It errs on the high side,
//     for at most one sweep.
//   - This instance's own changes (accepted, queued) apply at once and bump
//     the trigger's generation.
//   - A figure read from the store (a claim's reply, the sweep) applies only
//     when the generation taken before the read (gen, gens) is still the
//     trigger's: a read overtaken by a change of this instance would count
//     its events twice, or not at all, until the next sweep.
//
// Every method is safe for concurrent use; one mutex guards the map and is
// held only for map operations (never across a store call).
type backlog struct {
	mu sync.Mutex
	m  map[string]depth
}

// depth is one trigger's estimate; gen counts this instance's changes to it.
type depth struct{ held, logged, gen int64 }

func (d depth) total() int64 { return d.held + d.logged }

func newBacklog() *backlog { return &backlog{m: map[string]depth{}} }

// atCap returns the first trigger of matched whose backlog is at its
// max_queue, as a PushbackError without a retry delay, or nil. Names not in
// snap (deleted meanwhile) are not checked.
func (b *backlog) atCap(snap *snapshot, matched [][]string) *PushbackError {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ts := range matched {
		for _, name := range ts {
			t := snap.triggers[name]
			if t == nil {
				continue
			}
			if held := b.m[name].total(); held >= t.Spec.Delivery.MaxQueue {
				return &PushbackError{Trigger: name, Undelivered: held, MaxQueue: t.Spec.Delivery.MaxQueue}
			}
		}
	}
	return nil
}

// accepted counts events this instance appended to the ingest log: one per
// trigger each event matched.
func (b *backlog) accepted(matched [][]string) {
	b.mu.Lock()
	for _, ts := range matched {
		for _, t := range ts {
			d := b.m[t]
			d.logged++
			d.gen++
			b.m[t] = d
		}
	}
	b.mu.Unlock()
}

// queued records the queue sizes the store answered after this instance
// queued events (held), fromLog of them having left the ingest log.
func (b *backlog) queued(held, fromLog map[string]int64) {
	b.mu.Lock()
	for t, n := range held {
		d := b.m[t]
		d.held = n
		d.logged = max(0, d.logged-fromLog[t])
		d.gen++
		b.m[t] = d
	}
	b.mu.Unlock()
}

// gen returns the generation of one trigger's estimate, to pass to observe
// after reading the store.
func (b *backlog) gen(name string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[name].gen
}

// gens is gen for many triggers.
func (b *backlog) gens(names []string) map[string]int64 {
	gens := make(map[string]int64, len(names))
	b.mu.Lock()
	for _, n := range names {
		gens[n] = b.m[n].gen
	}
	b.mu.Unlock()
	return gens
}

// observe records a queue size read from the store, unless the trigger's
// generation moved since gen was taken.
func (b *backlog) observe(name string, held, gen int64) {
	b.mu.Lock()
	if d := b.m[name]; d.gen == gen {
		d.held = held
		b.m[name] = d
	}
	b.mu.Unlock()
}

// observeLogged records the store's count of log events admitted for each
// of names (absent: none), under the same rule as observe.
func (b *backlog) observeLogged(admitted map[string]int64, names []string, gens map[string]int64) {
	b.mu.Lock()
	for _, n := range names {
		if d := b.m[n]; d.gen == gens[n] {
			d.logged = admitted[n]
			b.m[n] = d
		}
	}
	b.mu.Unlock()
}
