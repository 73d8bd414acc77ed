package router

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// Ordered delivery per key (delivery.ordering). The router's part is small:
// it computes each event's lane when the event is queued for an ordered
// trigger (laneSet), and the store keeps the lanes (router/store/lanes.go):
// one event of a lane active at a time, in the order the events entered
// it, the next released by the same script that acknowledges or
// dead-letters the one before. Dispatchers, pull consumers, retries,
// leases and the sweep are those of every trigger: they only ever see the
// lanes' first events.
//
// An event published for the ordered trigger alone (the common case) is
// queued by the transaction that accepts it, so its lane holds the events
// of a key in acceptance order. A publish routed to several triggers goes
// through the ingest log, and its events enter their lanes when fanned
// out: in log order while one instance fans out, but two instances fanning
// out at once (or a record taken over after its reader died) may let an
// event of a later call enter a lane before one of an earlier call.

// laneSet computes the lanes of events queued for one ordered trigger.
type laneSet struct {
	key   *filter.Key
	block bool
	in    *filter.Input
}

// lanesFor returns the laneSet of trigger t, nil when t is not ordered.
func lanesFor(t *trigger.Trigger) *laneSet {
	if t == nil || t.Key == nil {
		return nil
	}
	return &laneSet{key: t.Key, block: t.Spec.Delivery.Ordering.OnDead == trigger.OnDeadBlock, in: filter.NewInput(nil)}
}

// item returns the queue item of event ev (its bytes b) with its lane.
func (l *laneSet) item(id string, ev *pb.CloudEvent, b []byte) store.Item {
	l.in.Reset(ev)
	key := l.key.Value(l.in)
	l.in.Reset(nil)
	return store.Item{ID: id, Event: b, Lane: store.LaneName(key), BlockOnDead: l.block}
}

// laneItems gives the items of the fan-out's batches for ordered triggers
// their lanes, decoding each event once.
func (r *Router) laneItems(batches map[string][]store.Item) {
	snap := r.snap.Load()
	decoded := map[string]*pb.CloudEvent{}
	for t, items := range batches {
		ls := lanesFor(snap.triggers[t])
		if ls == nil {
			continue
		}
		for i, it := range items {
			ev := decoded[it.ID]
			if ev == nil {
				ev = &pb.CloudEvent{}
				// An event that does not decode (it was valid when
				// accepted) goes to the default lane.
				_ = proto.Unmarshal(it.Event, ev)
				decoded[it.ID] = ev
			}
			items[i] = ls.item(it.ID, ev, it.Event)
		}
	}
}

// ErrLaneNotBlocked answers a skip of a lane that no dead letter blocks.
var ErrLaneNotBlocked = errors.New("the lane is not blocked")

// SkipLane unblocks the lane of ordering key key of trigger, stopped by a
// dead letter (on_dead block), without replaying the dead letter: the
// lane's next event is delivered. key is as trigger stats shows it (the
// "#<sha256>" of a long key included). ErrLaneNotBlocked when no dead
// letter blocks it.
func (r *Router) SkipLane(ctx context.Context, trigger, key string) error {
	ok, err := r.store.SkipLane(ctx, trigger, store.LaneName(key))
	if err == nil && !ok && isLaneHash(key) {
		ok, err = r.store.SkipLane(ctx, trigger, key)
	}
	switch {
	case store.IsFull(err):
		return fmt.Errorf("%w: %w", ErrStoreFull, err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case !ok:
		return fmt.Errorf("trigger %s, key %q: %w", trigger, key, ErrLaneNotBlocked)
	}
	r.wake(trigger)
	if r.peers.Load() {
		r.store.Client().Publish(ctx, r.store.Keys().WakeChannel(), trigger)
	}
	return nil
}

// isLaneHash reports whether key is the "#<sha256 hex>" name of a long key.
func isLaneHash(key string) bool {
	if len(key) != 65 || key[0] != '#' {
		return false
	}
	return strings.IndexFunc(key[1:], func(c rune) bool { return !strings.ContainsRune("0123456789abcdef", c) }) < 0
}
