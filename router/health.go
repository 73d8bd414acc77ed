package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrNotReady means the instance cannot do its work right now; the error
// wrapping it says why.
var ErrNotReady = errors.New("not ready")

// health holds why this instance cannot do its work right now, one reason
// per concern, each reported by the loop that owns the concern (the fan-out
// loop, the trigger watch) from what it does anyway: readiness costs those
// loops no extra store traffic.
type health struct {
	mu       sync.Mutex
	problems map[string]string
}

// set records that concern is failing, and why.
func (h *health) set(concern, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.problems == nil {
		h.problems = map[string]string{}
	}
	h.problems[concern] = reason
}

// clear records that concern works.
func (h *health) clear(concern string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.problems, concern)
}

// err returns nil when every concern works, else ErrNotReady with the reasons.
func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.problems) == 0 {
		return nil
	}
	reasons := make([]string, 0, len(h.problems))
	for c, r := range h.problems {
		reasons = append(reasons, c+": "+r)
	}
	slices.Sort(reasons)
	return fmt.Errorf("%w: %s", ErrNotReady, strings.Join(reasons, "; "))
}

// Concerns reported to health.
const (
	concernFanout   = "fan-out"
	concernTriggers = "triggers"
)

// Ready reports whether this instance can do its work: the store answers
// (one PING), has room for new events (see StoreFull) and no loop reports a
// problem (the fan-out failing, the store having lost the triggers and this
// instance not having restored them yet). The error says why not:
// ErrUnavailable when the store does not answer, ErrStoreFull when it is
// out of memory, ErrNotReady otherwise.
func (r *Router) Ready(ctx context.Context) error {
	if err := r.store.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := r.StoreFull(ctx); err != nil {
		if herr := r.health.err(); herr != nil {
			return fmt.Errorf("%w; %w", err, herr)
		}
		return err
	}
	return r.health.err()
}
