package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/dlq"
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
// of a key in acceptance order. So is an event of a publish routed to
// several triggers when the store is one node: its ordered triggers' share
// goes into their lanes in the transaction that appends the rest to the
// ingest log (logLanes). On Redis Cluster that share goes through the log
// and enters the lanes when fanned out: in log order while one instance
// fans out, but two instances fanning out at once (or a record taken over
// after its reader died) may let an event of a later call enter a lane
// before one of an earlier call.
//
// On every path an item keeps its dedup key (the trigger's window, checked
// in the script that puts it into its lane) and its due time (deliverafter:
// it enters its lane in acceptance order and, once it heads the lane,
// waits there for its time). A dead letter replayed into another ordered
// trigger goes to the end of its key's lane there (DeadLetters).

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

// item returns the queue item of event ev (its bytes b) with its lane,
// due no earlier than due (zero: now).
func (l *laneSet) item(id string, ev *pb.CloudEvent, b []byte, due time.Time) store.Item {
	return store.Item{ID: id, Event: b, Lane: l.lane(ev), BlockOnDead: l.block, Due: due}
}

// lane returns the name of ev's lane.
func (l *laneSet) lane(ev *pb.CloudEvent) string {
	l.in.Reset(ev)
	key := l.key.Value(l.in)
	l.in.Reset(nil)
	return store.LaneName(key)
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
			items[i].Lane, items[i].BlockOnDead = ls.lane(ev), ls.block
		}
	}
}

// DeadLetters returns the store's dead letters as replays are to use them:
// a replay into another trigger (dlq.ReplayRequest.To) that is ordered puts
// each event at the end of the lane of its key under that trigger's
// ordering, computed from the event as the fan-out does (the lane it had in
// its own trigger means nothing there). A replay into the same trigger puts
// an event back into the lane it died in (see store.Replay).
func (r *Router) DeadLetters() dlq.Store { return deadLetters{Store: r.store, r: r} }

type deadLetters struct {
	*store.Store
	r *Router
}

// ReplayTo implements dlq.Mover.
func (d deadLetters) ReplayTo(ctx context.Context, from, to string, ids []string, now time.Time) (int64, int64, error) {
	t := d.r.snap.Load().triggers[to]
	if t == nil {
		// Not in this instance's view yet (created a moment ago on
		// another): as stored.
		p, err := d.Store.GetTrigger(ctx, to)
		if err != nil {
			return 0, 0, err
		}
		if t, err = trigger.Compile(trigger.FromProto(p)); err != nil {
			return 0, 0, fmt.Errorf("replay into %s: %w", to, err)
		}
	}
	ls := lanesFor(t)
	if ls == nil {
		return d.Store.ReplayTo(ctx, from, to, ids, now)
	}
	return d.Store.ReplayToLanes(ctx, from, to, ids, now, func(b []byte) (string, bool) {
		ev := &pb.CloudEvent{}
		// An event that does not decode goes to the default lane.
		_ = proto.Unmarshal(b, ev)
		return ls.lane(ev), ls.block
	})
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

// logLanes takes the ordered triggers' share out of a publish routed to
// several triggers, on one node (store.OneNode): those events go into
// their lanes in the transaction that appends the rest to the ingest log
// (store.AppendLogAndLanes), so each lane has them in acceptance order
// whichever instance fans the rest out. On Redis Cluster they go through
// the log (see the package comment of lanes.go).
type logLanes struct {
	sets  map[string]*laneSet
	items map[string][]store.Item // trigger → events for its lanes
}

// takeLanes moves the ordered triggers of rec (the record of ev) to *lp's
// lanes (made on first use: a publish without ordered triggers allocates
// nothing), under a queue id of its own, and returns rec with the other
// triggers.
func (r *Router) takeLanes(lp **logLanes, snap *snapshot, rec store.LogRecord, ev *pb.CloudEvent, now time.Time) store.LogRecord {
	var id string
	var rest []string
	for i, t := range rec.Triggers {
		tr := snap.triggers[t]
		if tr == nil || tr.Key == nil {
			if rest != nil {
				rest = append(rest, t)
			}
			continue
		}
		if rest == nil {
			rest = append(make([]string, 0, len(rec.Triggers)), rec.Triggers[:i]...)
		}
		if id == "" {
			id = r.newID(now)
		}
		if *lp == nil {
			*lp = &logLanes{sets: map[string]*laneSet{}, items: map[string][]store.Item{}}
		}
		l := *lp
		ls := l.sets[t]
		if ls == nil {
			ls = lanesFor(tr)
			l.sets[t] = ls
		}
		l.items[t] = append(l.items[t], ls.item(id, ev, rec.Event, rec.Due))
	}
	if rest != nil {
		rec.Triggers = rest
	}
	return rec
}

// lanes returns the events taken, nil when none.
func (l *logLanes) lanes() map[string][]store.Item {
	if l == nil {
		return nil
	}
	return l.items
}

// appendLogAndLanes writes a group commit's log records and the ordered
// triggers' events taken out of them in one transaction (see logLanes),
// checking the events of triggers with a dedup window.
func (r *Router) appendLogAndLanes(ctx context.Context, lanes map[string][]store.Item, logged [][]store.LogRecord) error {
	r.stampDedup(lanes)
	held, err := r.store.AppendLogAndLanes(ctx, lanes, logged...)
	if held == nil {
		return err
	}
	dups := r.countDuplicates(lanes)
	for t, items := range lanes {
		r.metrics.trigger(t).add(cEnqueued, float64(len(items)-dups[t]))
	}
	r.queued(ctx, held, nil, nil)
	r.wakePeersForDelayed(ctx, lanes)
	return err
}
