package router

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// laneInvoker fails an attempt when a hash of (event id, attempt) says so
// (a third of them), and records, per trigger and ordering key, the
// sequence numbers it acknowledged and whether two attempts of one key ever
// ran at once.
type laneInvoker struct {
	mu       sync.Mutex
	acked    map[string][]int // "trigger/key" → sequence numbers acknowledged
	running  map[string]int
	overlaps int
}

func (l *laneInvoker) Invoke(_ context.Context, a *delivery.Attempt) delivery.Result {
	_, id, _ := strings.Cut(a.Key, " ") // "<source> <id>"
	key, seqs, _ := strings.Cut(id, "/")
	seq, _ := strconv.Atoi(seqs)
	lk := a.Trigger + "/" + key
	h := fnv.New32a()
	fmt.Fprintf(h, "%s#%d", id, a.Number)
	fail := h.Sum32()%3 == 0
	l.mu.Lock()
	if l.running[lk]++; l.running[lk] > 1 {
		l.overlaps++
	}
	l.mu.Unlock()
	time.Sleep(time.Millisecond) // a moment for another attempt of the key to overlap, were it started
	l.mu.Lock()
	l.running[lk]--
	if !fail {
		l.acked[lk] = append(l.acked[lk], seq)
	}
	l.mu.Unlock()
	if fail {
		return delivery.Result{Verdict: delivery.Retry, Start: time.Now()}
	}
	return delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
}

func (l *laneInvoker) Close() error { return nil }

func (l *laneInvoker) lane(k string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.acked[k]...)
}

func orderedTrigger(name, typePrefix string) trigger.Spec {
	return trigger.Spec{Name: name,
		Filter: filter.Spec{Prefix: map[string]string{"type": typePrefix}},
		Target: trigger.Target{GRPC: "127.0.0.1:1"},
		Delivery: trigger.Delivery{InitialBackoff: trigger.Duration{Duration: time.Millisecond}, MaxBackoff: trigger.Duration{Duration: 5 * time.Millisecond},
			MaxAttempts: 100, Ordering: &trigger.Ordering{Key: `id.split("/")[0]`}}}
}

// TestOrderedLanesAcrossInstances: events of five keys published through
// two instances, directly (routed to the ordered trigger alone), are
// acknowledged in publish order per key, with retries, one attempt of a
// key at a time; on every backend.
func TestOrderedLanesAcrossInstances(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &laneInvoker{acked: map[string][]int{}, running: map[string]int{}}
		rs := []*Router{
			startRouter(t, b.Client, b.Prefix, func(_ *Config, i *delivery.Invoker) { *i = inv }),
			startRouter(t, b.Client, b.Prefix, func(_ *Config, i *delivery.Invoker) { *i = inv }),
		}
		_, _, err := rs[0].PutTrigger(t.Context(), trigger.ToProto(orderedTrigger("ord", "o.")), store.PutApply, 0)
		require.NoError(t, err)
		const keys, per = 5, 40
		for seq := range per {
			batch := make([]*pb.CloudEvent, keys)
			for k := range keys {
				batch[k] = event(fmt.Sprintf("k%d/%d", k, seq), "o.solo")
			}
			_, err := rs[seq%2].Publish(t.Context(), batch)
			require.NoError(t, err)
		}
		want := make([]int, per)
		for i := range want {
			want[i] = i
		}
		for k := range keys {
			testenv.Eventually(t, 30*time.Second, func() bool { return len(inv.lane(fmt.Sprintf("ord/k%d", k))) >= per }, "key %d delivered", k)
			require.Equal(t, want, inv.lane(fmt.Sprintf("ord/k%d", k)), "key %d in order", k)
		}
		inv.mu.Lock()
		defer inv.mu.Unlock()
		require.Zero(t, inv.overlaps, "two attempts of one key at once")
	})
}

// TestOrderedLanesThroughTheLog: publishes routed to an ordered trigger and
// another one. The ordered trigger's share goes into its lanes when the
// publish is accepted (on one node in the transaction that logs the rest,
// on Redis Cluster just before it), so two instances publishing (and
// fanning out) keep each key's publish order. The other trigger gets every
// event.
func TestOrderedLanesThroughTheLog(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &laneInvoker{acked: map[string][]int{}, running: map[string]int{}}
		rs := []*Router{
			startRouter(t, b.Client, b.Prefix, func(_ *Config, i *delivery.Invoker) { *i = inv }),
			startRouter(t, b.Client, b.Prefix, func(_ *Config, i *delivery.Invoker) { *i = inv }),
		}
		_, _, err := rs[0].PutTrigger(t.Context(), trigger.ToProto(orderedTrigger("ord", "o.")), store.PutApply, 0)
		require.NoError(t, err)
		_, _, err = rs[0].PutTrigger(t.Context(), testTrigger("plain", "o.fan"), store.PutApply, 0)
		require.NoError(t, err)
		const keys, per = 3, 30
		for seq := range per {
			for k := range keys {
				res, err := rs[(seq+k)%len(rs)].Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("k%d/%d", k, seq), "o.fan")})
				require.NoError(t, err)
				require.Equal(t, []string{"ord", "plain"}, res.Triggers[0])
			}
		}
		want := make([]int, per)
		for i := range want {
			want[i] = i
		}
		for k := range keys {
			testenv.Eventually(t, 30*time.Second, func() bool {
				return len(inv.lane(fmt.Sprintf("ord/k%d", k))) >= per && len(inv.lane(fmt.Sprintf("plain/k%d", k))) >= per
			}, "key %d delivered to both triggers", k)
			require.Equal(t, want, inv.lane(fmt.Sprintf("ord/k%d", k)), "key %d in order", k)
		}
	})
}

// TestOrderedPullTrigger: a pull consumer of an ordered trigger holding
// plenty of credits gets one event of a key at a time, in order; an event
// it answers retry comes back before the key's next.
func TestOrderedPullTrigger(t *testing.T) {
	b := testenv.Real(t)
	r := startRouter(t, b.Client, b.Prefix, nil)
	spec := orderedTrigger("pulled", "p.")
	spec.Target = trigger.Target{Pull: &trigger.PullTarget{}}
	_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(spec), store.PutApply, 0)
	require.NoError(t, err)
	const keys, per = 3, 10
	for seq := range per {
		batch := make([]*pb.CloudEvent, keys)
		for k := range keys {
			batch[k] = event(fmt.Sprintf("k%d/%d", k, seq), "p.x")
		}
		_, err := r.Publish(t.Context(), batch)
		require.NoError(t, err)
	}
	c, err := r.Consume(t.Context(), "pulled", ConsumerConfig{Name: "test"})
	require.NoError(t, err)
	defer c.Close()
	c.Grant(100)
	acked := map[string][]int{}
	retried := map[string]bool{}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for n := 0; n < keys*per; {
		p, err := c.Next(ctx)
		require.NoError(t, err)
		seen := map[string]bool{}
		var answers []Answer
		for _, l := range p.Events {
			_, id, _ := strings.Cut(l.Key, " ")
			key, seqs, _ := strings.Cut(id, "/")
			seq, _ := strconv.Atoi(seqs)
			require.False(t, seen[key], "two events of %s handed out at once", key)
			seen[key] = true
			ref := store.AttemptRef{ID: l.ID, Attempt: l.Attempt}
			if seq == 3 && !retried[key] {
				retried[key] = true
				answers = append(answers, Answer{AttemptRef: ref, Outcome: PullRetry, Reason: "later"})
				continue
			}
			acked[key] = append(acked[key], seq)
			answers = append(answers, Answer{AttemptRef: ref, Outcome: PullAck})
			n++
		}
		c.Answer(answers)
		c.Grant(len(p.Events))
	}
	want := make([]int, per)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		require.Equal(t, want, acked[fmt.Sprintf("k%d", k)], "key %d", k)
	}
}

// TestLaneGauges: an ordered trigger's lanes in the metrics, with the
// events waiting behind an earlier one of their key (behind an attempt in
// flight, or a blocked lane); a blocked lane counts until skipped; an
// unordered trigger has no lane series.
func TestLaneGauges(t *testing.T) {
	b := testenv.Real(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	inv := invokerFunc(func(ctx context.Context, a *delivery.Attempt) delivery.Result {
		if strings.HasSuffix(a.Key, "k1/0") {
			return delivery.Result{Verdict: delivery.DeadNow, Code: "INVALID_ARGUMENT", Start: time.Now()}
		}
		if strings.Contains(a.Key, "held/") {
			select {
			case <-release:
			case <-ctx.Done():
				return delivery.Result{Verdict: delivery.Retry, Code: "UNAVAILABLE", Start: time.Now()}
			}
		}
		return delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
	})
	r := startRouter(t, b.Client, b.Prefix, func(c *Config, i *delivery.Invoker) { *i = inv; c.Metrics.StoreReadTTL = -1 })
	spec := orderedTrigger("gauged", "g.")
	spec.Delivery.Ordering.OnDead = trigger.OnDeadBlock
	_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(spec), store.PutApply, 0)
	require.NoError(t, err)
	_, _, err = r.PutTrigger(t.Context(), testTrigger("plain", "p"), store.PutApply, 0)
	require.NoError(t, err)
	_, _, err = r.PutTrigger(t.Context(), trigger.ToProto(orderedTrigger("holding", "h.")), store.PutApply, 0)
	require.NoError(t, err)
	_, err = r.Publish(t.Context(), []*pb.CloudEvent{event("k1/0", "g.x"), event("k1/1", "g.x"), event("k2/0", "g.x")})
	require.NoError(t, err)
	_, err = r.Publish(t.Context(), []*pb.CloudEvent{event("held/0", "h.x"), event("held/1", "h.x"), event("held/2", "h.x"), event("free/0", "h.x")})
	require.NoError(t, err)
	reg := r.Registry()
	lbl := map[string]string{"trigger": "gauged"}
	testenv.Eventually(t, 10*time.Second, func() bool {
		blocked, _ := value(t, reg, "switchyard_trigger_lanes_blocked", lbl)
		active, _ := value(t, reg, "switchyard_trigger_lanes_active", lbl)
		behind, _ := value(t, reg, "switchyard_trigger_lane_waiting", lbl)
		return blocked == 1 && active == 1 && behind == 1
	}, "k1 blocked, holding k1/1")
	held := map[string]string{"trigger": "holding"}
	testenv.Eventually(t, 10*time.Second, func() bool {
		active, _ := value(t, reg, "switchyard_trigger_lanes_active", held)
		behind, _ := value(t, reg, "switchyard_trigger_lane_waiting", held)
		return active == 1 && behind == 2
	}, "held/1 and held/2 wait behind held/0, free/0 delivered")
	once.Do(func() { close(release) })
	testenv.Eventually(t, 10*time.Second, func() bool {
		active, _ := value(t, reg, "switchyard_trigger_lanes_active", held)
		behind, _ := value(t, reg, "switchyard_trigger_lane_waiting", held)
		return active == 0 && behind == 0
	}, "the held lane drained")
	_, ok := value(t, reg, "switchyard_trigger_lanes_active", map[string]string{"trigger": "plain"})
	require.False(t, ok, "no lane series for an unordered trigger")
	require.NoError(t, r.SkipLane(t.Context(), "gauged", "k1"))
	testenv.Eventually(t, 10*time.Second, func() bool {
		blocked, _ := value(t, reg, "switchyard_trigger_lanes_blocked", lbl)
		active, _ := value(t, reg, "switchyard_trigger_lanes_active", lbl)
		behind, _ := value(t, reg, "switchyard_trigger_lane_waiting", lbl)
		return blocked == 0 && active == 0 && behind == 0
	}, "k1 skipped and drained")
	require.ErrorIs(t, r.SkipLane(t.Context(), "gauged", "k1"), ErrLaneNotBlocked)
}

// With the archive on, a publish whose events lanes take wholly out of the
// log records (routed to two ordered triggers on one node) is still written
// to both lanes and archived whole, each event with its own bytes, beside
// an unmatched one.
func TestOrderedLanesWithTheArchive(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &laneInvoker{acked: map[string][]int{}, running: map[string]int{}}
		r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, inv))
		for _, name := range []string{"ord1", "ord2"} {
			_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(orderedTrigger(name, "o.")), store.PutApply, 0)
			require.NoError(t, err)
		}
		evs := []*pb.CloudEvent{event("k0/0", "o.fan"), event("u/0", "none"), event("k0/1", "o.fan")}
		res, err := r.Publish(t.Context(), evs)
		require.NoError(t, err)
		require.Equal(t, []string{"ord1", "ord2"}, res.Triggers[0])
		for _, name := range []string{"ord1", "ord2"} {
			testenv.Eventually(t, 30*time.Second, func() bool { return len(inv.lane(name+"/k0")) >= 2 }, "%s got both events", name)
			require.Equal(t, []int{0, 1}, inv.lane(name+"/k0"))
		}
		require.Equal(t, []string{"k0/0", "u/0", "k0/1"}, archivedIDs(t, r, 10))
	})
}

// TestOrderedDedup: an ordered trigger without a dedup window of its own
// gets the server's; every event published twice, through two instances,
// directly (routed to the ordered trigger alone) and with another trigger
// (through the log, or the log's transaction on one node), is delivered
// once per trigger and in publish order per key.
func TestOrderedDedup(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &laneInvoker{acked: map[string][]int{}, running: map[string]int{}}
		tweak := func(c *Config, i *delivery.Invoker) { c.DedupWindow = time.Minute; *i = inv }
		rs := []*Router{startRouter(t, b.Client, b.Prefix, tweak), startRouter(t, b.Client, b.Prefix, tweak)}
		_, _, err := rs[0].PutTrigger(t.Context(), trigger.ToProto(orderedTrigger("ord", "o.")), store.PutApply, 0)
		require.NoError(t, err)
		_, _, err = rs[0].PutTrigger(t.Context(), testTrigger("plain", "o.fan"), store.PutApply, 0)
		require.NoError(t, err)
		require.Equal(t, time.Minute, rs[1].DedupWindow("ord"), "the server's default applies")
		const keys, per = 3, 12
		for seq := range per {
			for k := range keys {
				for _, typ := range []string{"o.solo", "o.fan"} {
					id := fmt.Sprintf("%s-k%d/%d", typ, k, seq)
					for c := range 2 {
						_, err := rs[(seq+k+c)%2].Publish(t.Context(), []*pb.CloudEvent{event(id, typ)})
						require.NoError(t, err)
					}
				}
			}
		}
		want := make([]int, per)
		for i := range want {
			want[i] = i
		}
		lanes := map[string]int{"ord/o.solo-k": per, "ord/o.fan-k": per, "plain/o.fan-k": per}
		for lk, n := range lanes {
			for k := range keys {
				testenv.Eventually(t, 30*time.Second, func() bool { return len(inv.lane(fmt.Sprintf("%s%d", lk, k))) >= n }, "%s%d delivered", lk, k)
			}
		}
		st := rs[0].Store()
		testenv.Eventually(t, 10*time.Second, func() bool {
			qs, err := st.Stats(t.Context(), "ord")
			require.NoError(t, err)
			return qs.Counters["delivered"] == fmt.Sprint(2*keys*per)
		}, "every event acknowledged")
		for k := range keys {
			require.Equal(t, want, inv.lane(fmt.Sprintf("ord/o.solo-k%d", k)), "key %d, direct: once each, in order", k)
			require.Equal(t, want, inv.lane(fmt.Sprintf("ord/o.fan-k%d", k)), "key %d, with another trigger: once each, in order", k)
		}
		qs, err := st.Stats(t.Context(), "ord")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(2*keys*per), qs.Counters["duplicates"])
		require.Equal(t, fmt.Sprint(2*keys*per), qs.Counters["enqueued"])
	})
}

// timedInvoker acknowledges every attempt and records, per trigger and
// event id, when.
type timedInvoker struct {
	mu sync.Mutex
	at map[string][]time.Time // "trigger/id" → attempts' times
}

func (ti *timedInvoker) Invoke(_ context.Context, a *delivery.Attempt) delivery.Result {
	_, id, _ := strings.Cut(a.Key, " ")
	ti.mu.Lock()
	ti.at[a.Trigger+"/"+id] = append(ti.at[a.Trigger+"/"+id], time.Now())
	ti.mu.Unlock()
	return delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
}

func (ti *timedInvoker) Close() error { return nil }

func (ti *timedInvoker) times(k string) []time.Time {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return append([]time.Time(nil), ti.at[k]...)
}

func delayedEvent(id, typ, after string) *pb.CloudEvent {
	ev := event(id, typ)
	ev.Attributes = map[string]*pb.CloudEventAttributeValue{DeliverAfterExtension: str(after)}
	return ev
}

// TestOrderedDeliverAfter: an event of an ordered trigger asking for later
// delivery is attempted no earlier than its time, and the events of its
// key published after it wait for it; other keys go on. Queued directly
// and with another trigger.
func TestOrderedDeliverAfter(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &timedInvoker{at: map[string][]time.Time{}}
		r := startRouter(t, b.Client, b.Prefix, func(_ *Config, i *delivery.Invoker) { *i = inv })
		_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(orderedTrigger("ord", "o.")), store.PutApply, 0)
		require.NoError(t, err)
		_, _, err = r.PutTrigger(t.Context(), testTrigger("plain", "o.fan"), store.PutApply, 0)
		require.NoError(t, err)
		for _, typ := range []string{"o.solo", "o.fan"} {
			start := time.Now()
			_, err := r.Publish(t.Context(), []*pb.CloudEvent{delayedEvent(typ+"-k0/0", typ, "1s"), event(typ+"-k1/0", typ)})
			require.NoError(t, err)
			_, err = r.Publish(t.Context(), []*pb.CloudEvent{event(typ+"-k0/1", typ)})
			require.NoError(t, err)
			testenv.Eventually(t, 30*time.Second, func() bool {
				return len(inv.times("ord/"+typ+"-k0/1")) > 0 && len(inv.times("ord/"+typ+"-k1/0")) > 0
			}, "%s: delivered", typ)
			late, next := inv.times("ord/"+typ+"-k0/0"), inv.times("ord/"+typ+"-k0/1")
			require.Len(t, late, 1)
			require.False(t, late[0].Before(start.Add(time.Second-5*time.Millisecond)), "%s: attempted %s after the publish, asked 1s", typ, late[0].Sub(start))
			require.False(t, next[0].Before(late[0]), "%s: the key's next event waits for it", typ)
		}
		testenv.Eventually(t, 10*time.Second, func() bool { return len(inv.times("plain/o.fan-k0/0")) > 0 }, "the other trigger's copy")
	})
}

// TestFanoutDedupDelayed: events asking for later delivery, each published
// twice, to triggers with the server's dedup window: routed to two triggers
// (a fan-out batch holding delayed events) and to one alone (the direct
// path). Each trigger queues each event once, and delivers it no earlier
// than asked.
func TestFanoutDedupDelayed(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &timedInvoker{at: map[string][]time.Time{}}
		r := startRouter(t, b.Client, b.Prefix, func(c *Config, i *delivery.Invoker) { c.DedupWindow = time.Minute; *i = inv })
		for _, p := range []*switchyardv1.Trigger{testTrigger("fan-a", "fan"), testTrigger("fan-b", "fan"), testTrigger("solo", "solo")} {
			_, _, err := r.PutTrigger(t.Context(), p, store.PutApply, 0)
			require.NoError(t, err)
		}
		start := time.Now()
		for range 2 {
			_, err := r.Publish(t.Context(), []*pb.CloudEvent{delayedEvent("f1", "fan", "1s"), event("f2", "fan")})
			require.NoError(t, err)
			_, err = r.Publish(t.Context(), []*pb.CloudEvent{delayedEvent("s1", "solo", "1s"), event("s2", "solo")})
			require.NoError(t, err)
		}
		st := r.Store()
		for _, trig := range []string{"fan-a", "fan-b", "solo"} {
			testenv.Eventually(t, 30*time.Second, func() bool {
				qs, err := st.Stats(t.Context(), trig)
				require.NoError(t, err)
				return qs.Counters["delivered"] == "2"
			}, "%s: delivered", trig)
			qs, err := st.Stats(t.Context(), trig)
			require.NoError(t, err)
			require.Equal(t, "2", qs.Counters["duplicates"], trig)
			require.Equal(t, "2", qs.Counters["enqueued"], trig)
		}
		for _, k := range []string{"fan-a/f1", "fan-b/f1", "solo/s1"} {
			at := inv.times(k)
			require.Len(t, at, 1, k)
			require.False(t, at[0].Before(start.Add(time.Second-5*time.Millisecond)), "%s: attempted %s after the publish, asked 1s", k, at[0].Sub(start))
		}
	})
}
