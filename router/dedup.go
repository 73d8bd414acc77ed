package router

import (
	"fmt"
	"time"

	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// Deduplication on (source, id), the router's part. A trigger's dedup
// window is its delivery.dedup_window, else the server's DedupWindow, cut
// to MaxDedupWindow. Before the items of a trigger with a window are
// written (the direct commit, the fan-out), each is given its event's
// store.DedupKey, read from the stored bytes without decoding them; the
// store's enqueue script checks and records the keys in the same atomic
// step that queues (see router/store/dedup.go), and marks the items it did
// not queue. The router counts those (switchyard_events_duplicate_total)
// and leaves them out of switchyard_events_enqueued_total. The publisher
// is answered as for any accepted event: its event was accepted, once.
//
// Both paths check, so a copy is caught whichever way each copy went: a
// publish retried after a timeout, a connector redelivering after a
// crash, a copy published on another instance, or one published again
// after the instance that wrote the first died before answering.

// validateDedup checks the dedup settings of c (before defaults).
func (c Config) validateDedup() error {
	maxW := c.MaxDedupWindow
	if maxW == 0 {
		maxW = DefaultMaxDedupWindow
	}
	switch {
	case c.DedupWindow < 0 || c.MaxDedupWindow < 0:
		return fmt.Errorf("dedup window and max dedup window must not be negative")
	case maxW > trigger.MaxDedupWindow:
		return fmt.Errorf("max dedup window must be at most %s, got %s", trigger.MaxDedupWindow, maxW)
	case c.DedupWindow > maxW:
		return fmt.Errorf("dedup window %s exceeds the max dedup window %s", c.DedupWindow, maxW)
	}
	return nil
}

// dedupWindow returns the dedup window of t (nil: a trigger this instance
// does not know, which gets none: the fan-out of an event for a trigger
// created moments ago elsewhere is not checked).
func (r *Router) dedupWindow(t *trigger.Trigger) time.Duration {
	if t == nil {
		return 0
	}
	return min(t.Spec.Delivery.DedupWindowOr(r.cfg.DedupWindow), r.cfg.MaxDedupWindow)
}

// stampDedup gives the items of every trigger with a dedup window their
// events' keys and the window.
func (r *Router) stampDedup(batches map[string][]store.Item) {
	snap := r.snap.Load()
	for name, items := range batches {
		w := r.dedupWindow(snap.triggers[name])
		if w <= 0 {
			continue
		}
		for i := range items {
			f := scanStored(items[i].Event)
			items[i].DedupKey, items[i].DedupWindow = store.DedupKey(f.source, f.id), w
		}
	}
}

// countDuplicates counts, per trigger, the items the store marked as
// duplicates, adding them to the trigger's duplicate counter. It returns
// nil when there are none.
func (r *Router) countDuplicates(batches map[string][]store.Item) map[string]int {
	var out map[string]int
	for name, items := range batches {
		n := 0
		for _, it := range items {
			if it.Duplicate {
				n++
			}
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[name] = n
		r.metrics.trigger(name).add(cDuplicate, float64(n))
	}
	return out
}

// DedupWindow returns the dedup window in force for the named trigger on
// this instance (0: off, or a trigger it does not know).
func (r *Router) DedupWindow(name string) time.Duration {
	return r.dedupWindow(r.snap.Load().triggers[name])
}
