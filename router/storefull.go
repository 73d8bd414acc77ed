package router

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/router/store"
)

// ErrStoreFull means Redis is out of memory (maxmemory reached, noeviction):
// nothing was accepted; retry once deliveries have freed memory. It is not
// ErrUnavailable: the store answers, and delivery goes on (see store's
// oom.go), which is what frees the memory.
var ErrStoreFull = errors.New("store full")

// ErrEvictingStore refuses a Redis whose maxmemory-policy deletes keys to
// make room: it would delete queues, and the events in them, silently.
var ErrEvictingStore = errors.New("the Redis evicts keys when full")

// fullness remembers that the store refused a write for want of memory,
// and since when (unix ns; 0: not known to be full). Writes that succeed
// clear it; so does the server reporting memory below its limit.
type fullness struct{ since atomic.Int64 }

// noteWrite records the outcome of a write of new events: a refusal for
// want of memory marks the store full, a success clears it. Only the change
// is logged.
func (r *Router) noteWrite(err error) {
	switch {
	case err == nil:
		if r.full.since.Swap(0) != 0 {
			r.log.Info("store accepts events again")
		}
	case store.IsFull(err):
		if r.full.since.CompareAndSwap(0, time.Now().UnixNano()) {
			r.log.Warn("store full: Redis is out of memory; publishing is refused (HTTP 507, gRPC RESOURCE_EXHAUSTED) while deliveries drain the queues",
				"err", err)
		}
	}
}

// StoreFull returns nil unless the store refuses new events for want of
// memory; then an error wrapping ErrStoreFull that says why. Readiness
// checks use it.
//
// Where the server reports its memory (INFO memory), it is full while its
// used memory is over its limit, and also, once a write was refused, until
// it is fullRoom below it: a request counts in Redis's memory while it is
// read, so at the limit a large publish is refused while a small one still
// fits, and a check on the limit alone would flap. Where it does not (the
// embedded store), the last write of new events decides.
func (r *Router) StoreFull(ctx context.Context) error {
	m, err := r.store.Memory(ctx)
	if err == nil && m.Known {
		used := m.Used - m.NotCounted
		refused := r.full.since.Load() != 0
		if m.Max > 0 && (used > m.Max || refused && used > m.Max-m.Max/fullRoom) {
			return fmt.Errorf("%w: Redis uses %d bytes of its maxmemory %d (policy %s); publishing is refused until deliveries free memory",
				ErrStoreFull, used, m.Max, m.Policy)
		}
		r.full.since.Store(0)
		return nil
	}
	if since := r.full.since.Load(); since != 0 {
		return fmt.Errorf("%w since %s: the store refused the last write for want of memory; publishing is refused until deliveries free memory",
			ErrStoreFull, time.Unix(0, since).UTC().Format(time.RFC3339))
	}
	return nil
}

// fullRoom: once a write was refused, the store counts as full until its
// used memory is a fullRoom-th (2%) below maxmemory.
const fullRoom = 50

// checkMemoryPolicy refuses a Redis whose maxmemory-policy evicts keys,
// unless the configuration allows it (then it warns).
func (r *Router) checkMemoryPolicy(ctx context.Context) error {
	m, err := r.store.Memory(ctx)
	if err != nil {
		return fmt.Errorf("%w: read memory settings: %w", ErrUnavailable, err)
	}
	if !m.Evicts() {
		return nil
	}
	if r.cfg.AllowEvictingRedis {
		r.log.Warn("the Redis evicts keys when full: queues and the events in them may be deleted silently (allowed by allow_evicting_redis)",
			"maxmemory_policy", m.Policy)
		return nil
	}
	return fmt.Errorf("%w: maxmemory-policy is %s, which deletes any key, queues included, when memory runs out; set it to noeviction (Switchyard then refuses publishes while full, with HTTP 507) or a volatile-* policy, or start with --allow-evicting-redis (allow_evicting_redis: true) to accept losing events",
		ErrEvictingStore, m.Policy)
}
