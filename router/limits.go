package router

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
)

// filterBudgetLogEvery spaces the warnings about events whose filter
// budget ran out: one per event would flood the log exactly when filters
// are too costly.
const filterBudgetLogEvery = time.Minute

// filterBudgetSpent counts an event whose CEL budget ran out while it was
// matched, and warns about it at most once per filterBudgetLogEvery.
func (r *Router) filterBudgetSpent(ev *pb.CloudEvent) {
	r.metrics.filterBudget.Inc()
	now := time.Now().UnixNano()
	last := r.budgetLogged.Load()
	if now-last < int64(filterBudgetLogEvery) || !r.budgetLogged.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn("CEL filter budget spent while matching an event: the CEL filters not yet evaluated did not match it (switchyard_filter_budget_exhausted_total counts them; logged once a minute)",
		"event_id", ev.GetId(), "event_source", ev.GetSource(), "event_type", ev.GetType(), "budget", r.cfg.FilterCostPerEvent)
}

// LimitError refuses a request that would pass a configured limit; Field
// is the request field it is about, Limit the limit's configuration key.
type LimitError struct {
	Field string
	Limit string
	Max   int
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// triggerReservations counts the triggers being created on this instance
// that its view does not hold yet, so that concurrent creates cannot pass a
// trigger limit together.
type triggerReservations struct {
	mu      sync.Mutex
	pending map[string]int // trigger name → creates in progress
}

// ReserveTrigger checks that creating the trigger name keeps the number of
// triggers within MaxTriggers and, for each of scopes (trigger name
// prefixes, those of the caller's scope) that name falls under, within
// MaxTriggersPerScope; a trigger that exists already passes. It counts the
// triggers this instance serves plus the creates in progress here, and
// holds the name as in progress until release is called, which the caller
// does once the trigger is stored and installed (or refused). Concurrent
// creates on one instance are counted exactly; creates through different
// instances within the moment it takes them to see each other's can pass a
// limit by one per instance. The error is a *LimitError.
func (r *Router) ReserveTrigger(name string, scopes []string) (release func(), err error) {
	snap := r.snap.Load()
	if snap.triggers[name] != nil {
		return func() {}, nil
	}
	rs := &r.reserved
	rs.mu.Lock()
	defer rs.mu.Unlock()
	// The view read again under the lock: a create released meanwhile
	// left the pending set only once its trigger was in the view, so one
	// read before the lock could miss it in both and pass the limit.
	snap = r.snap.Load()
	newPending := 0
	for n := range rs.pending {
		if snap.triggers[n] == nil {
			newPending++
		}
	}
	if limit := r.cfg.MaxTriggers; limit > 0 && len(snap.triggers)+newPending >= limit {
		return nil, &LimitError{Field: "trigger.name", Limit: "max_triggers", Max: limit,
			Msg: fmt.Sprintf("there are %d triggers, the limit (max_triggers %d): delete one first, or raise the limit", len(snap.triggers)+newPending, limit)}
	}
	if limit := r.cfg.MaxTriggersPerScope; limit > 0 {
		for _, p := range scopes {
			if !strings.HasPrefix(name, p) {
				continue
			}
			n := 0
			for t := range snap.triggers {
				if strings.HasPrefix(t, p) {
					n++
				}
			}
			for t := range rs.pending {
				if snap.triggers[t] == nil && strings.HasPrefix(t, p) {
					n++
				}
			}
			if n >= limit {
				return nil, &LimitError{Field: "trigger.name", Limit: "max_triggers_per_scope", Max: limit,
					Msg: fmt.Sprintf("the scope %q holds %d triggers, the limit (max_triggers_per_scope %d): delete one first", p, n, limit)}
			}
		}
	}
	if rs.pending == nil {
		rs.pending = map[string]int{}
	}
	rs.pending[name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if rs.pending[name]--; rs.pending[name] <= 0 {
				delete(rs.pending, name)
			}
		})
	}, nil
}
