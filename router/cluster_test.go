package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/store"
)

// startRouter starts a router on rdb under prefix until the test ends; its
// invoker is a countingInvoker, or the one tweak sets.
func startRouter(t *testing.T, rdb redis.UniversalClient, prefix string, tweak func(*Config, *delivery.Invoker)) *Router {
	t.Helper()
	cfg := Config{Prefix: prefix, Logger: slog.New(slog.DiscardHandler), SweepInterval: 100 * time.Millisecond,
		InstanceID: fmt.Sprintf("r%d", routerSeq.Add(1))}
	var inv delivery.Invoker = &countingInvoker{seen: map[string]int{}}
	if tweak != nil {
		tweak(&cfg, &inv)
	}
	r, err := New(cfg, rdb, inv)
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
	})
	return r
}

var routerSeq atomic.Int64

// countingInvoker acknowledges every attempt and counts them per trigger
// and event.
type countingInvoker struct {
	mu   sync.Mutex
	seen map[string]int // "trigger/source id" → attempts
}

func (c *countingInvoker) Invoke(_ context.Context, a *delivery.Attempt) delivery.Result {
	c.mu.Lock()
	c.seen[a.Trigger+"/"+a.Key]++ // Key is "<source> <id>"
	c.mu.Unlock()
	return delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
}

func (c *countingInvoker) Close() error { return nil }

func (c *countingInvoker) count(trigger string, ids ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range ids {
		if c.seen[trigger+"//test "+id] > 0 {
			n++
		}
	}
	return n
}

func event(id, typ string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "/test", SpecVersion: "1.0", Type: typ}
}

// A change applied on one instance routes on every other one as soon as the
// call returned: each waits for the others' acknowledgements.
func TestChangeIsLiveEverywhereOnReturn(t *testing.T) {
	t.Run("redis", func(t *testing.T) { changeIsLiveEverywhere(t, testenv.Real(t), 150) })
	t.Run("cluster", func(t *testing.T) { changeIsLiveEverywhere(t, testenv.Cluster(t), 50) })
}

func changeIsLiveEverywhere(t *testing.T, b testenv.Backend, rounds int) {
	rs := []*Router{startRouter(t, b.Client, b.Prefix, nil), startRouter(t, b.Client, b.Prefix, nil), startRouter(t, b.Client, b.Prefix, nil)}
	for i := range rounds {
		a := rs[i%3]
		name := fmt.Sprintf("rw-%d", i%7)
		typ := fmt.Sprintf("type-%d", i)
		_, lagging, err := a.PutTrigger(t.Context(), testTrigger(name, typ), store.PutApply, 0)
		require.NoError(t, err)
		require.Empty(t, lagging)
		for _, o := range rs {
			require.Equal(t, []string{name}, matches(o, typ), "round %d: %s applied on %s, not live on %s", i, name, a.cfg.InstanceID, o.cfg.InstanceID)
		}
		if i%5 == 4 {
			_, lagging, err := rs[(i+1)%3].DeleteTrigger(t.Context(), name, true)
			require.NoError(t, err)
			require.Empty(t, lagging)
			for _, o := range rs {
				require.Empty(t, matches(o, typ), "round %d: %s deleted, still live on %s", i, name, o.cfg.InstanceID)
			}
		}
	}
}

// A lost notice in the middle of others is seen as a gap and repaired by a
// reload; a lost last notice by the once-a-second comparison.
func TestLostNoticesAreRepaired(t *testing.T) {
	b := testenv.Real(t)
	a := startRouter(t, b.Client, b.Prefix, nil)
	o := startRouter(t, b.Client, b.Prefix, nil)
	keys := store.NewKeys(b.Prefix)
	// A change whose notice never went out: written as putScript does,
	// without the PUBLISH.
	silent := func(name, typ string) {
		raw, err := proto.Marshal(withGen(testTrigger(name, typ), 1))
		require.NoError(t, err)
		_, err = b.Client.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
			p.HSet(t.Context(), keys.Triggers(), name, raw)
			p.Incr(t.Context(), keys.Revision())
			return nil
		})
		require.NoError(t, err)
	}
	silent("lost-1", "lost-1")
	_, lagging, err := a.PutTrigger(t.Context(), testTrigger("after", "after"), store.PutApply, 0)
	require.NoError(t, err)
	require.Empty(t, lagging, "the gap made both instances reload")
	for _, r := range []*Router{a, o} {
		require.Equal(t, []string{"lost-1"}, matches(r, "lost-1"))
		require.Equal(t, []string{"after"}, matches(r, "after"))
	}
	silent("lost-2", "lost-2")
	testenv.Eventually(t, 20*time.Second, func() bool {
		return len(matches(a, "lost-2")) == 1 && len(matches(o, "lost-2")) == 1
	}, "a lost last notice is found by the comparison of versions")
}

// An instance that is alive but cannot install a change is named as lagging
// once the bounded wait is over, and the change is stored all the same; one
// that stopped heartbeating is not waited for and leaves the registry.
func TestLaggingAndDeadInstances(t *testing.T) {
	b := testenv.Real(t)
	fast := func(id string) func(*Config, *delivery.Invoker) {
		return func(c *Config, _ *delivery.Invoker) {
			c.HeartbeatInterval, c.TriggerSyncTimeout, c.InstanceID = 50*time.Millisecond, 300*time.Millisecond, id
		}
	}
	a := startRouter(t, b.Client, b.Prefix, fast("a"))
	frozen := startRouter(t, b.Client, b.Prefix, fast("frozen"))

	// Holding its view's lock freezes the instance's watch loop in its
	// next install; its heartbeat goes on.
	frozen.reloadMu.Lock()
	start := time.Now()
	_, lagging, err := a.PutTrigger(t.Context(), testTrigger("lag", "lag"), store.PutApply, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"frozen"}, lagging)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "waited up to the timeout")
	require.Equal(t, []string{"lag"}, matches(a, "lag"))
	got, err := a.store.GetTrigger(t.Context(), "lag")
	require.NoError(t, err)
	require.Equal(t, "lag", got.GetName())
	// A caller's deadline sooner than the sync timeout: the answer comes
	// before it, naming the laggard.
	patient := startRouter(t, b.Client, b.Prefix, func(c *Config, _ *delivery.Invoker) {
		c.HeartbeatInterval, c.TriggerSyncTimeout, c.InstanceID = 50*time.Millisecond, time.Minute, "patient"
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	start = time.Now()
	_, lagging, err = patient.PutTrigger(ctx, testTrigger("lag-b", "lag-b"), store.PutApply, 0)
	cancel()
	require.NoError(t, err)
	require.Equal(t, []string{"frozen"}, lagging)
	require.Less(t, time.Since(start), 30*time.Second)
	frozen.reloadMu.Unlock()
	testenv.Eventually(t, 20*time.Second, func() bool { return len(matches(frozen, "lag")) == 1 }, "the laggard catches up")

	// A member whose last heartbeat is older than MissedHeartbeats
	// intervals (a process killed with SIGKILL) is not waited for, and the
	// next heartbeat removes it from the registry.
	keys := store.NewKeys(b.Prefix)
	now, err := b.Client.Time(t.Context()).Result()
	require.NoError(t, err)
	// Both entries at once, as an instance's heartbeat writes them: a
	// heartbeat between two separate writes would remove the member and
	// leave the served entry to be written after it.
	_, err = b.Client.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
		p.ZAdd(t.Context(), keys.Members(), redis.Z{Member: "ghost", Score: float64(now.Add(-10 * time.Second).UnixMilli())})
		p.HSet(t.Context(), keys.Served(), "ghost", "e 0")
		return nil
	})
	require.NoError(t, err)
	_, lagging, err = a.PutTrigger(t.Context(), testTrigger("lag", "lag-2"), store.PutApply, 0)
	require.NoError(t, err)
	require.Empty(t, lagging)
	testenv.Eventually(t, 20*time.Second, func() bool {
		_, zerr := b.Client.ZScore(t.Context(), keys.Members(), "ghost").Result()
		served, herr := b.Client.HExists(t.Context(), keys.Served(), "ghost").Result()
		return zerr == redis.Nil && herr == nil && !served
	}, "a silent member is removed from the registry")

	// A graceful shutdown leaves the registry at once.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	require.NoError(t, frozen.Shutdown(sctx))
	_, err = b.Client.ZScore(t.Context(), keys.Members(), "frozen").Result()
	require.ErrorIs(t, err, redis.Nil)
	served, err := b.Client.HExists(t.Context(), keys.Served(), "frozen").Result()
	require.NoError(t, err)
	require.False(t, served)
	ids, err := b.Client.ZRange(t.Context(), keys.Members(), 0, -1).Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "patient"}, ids)
}

// When the store loses everything (here: every key under the prefix, as a
// Redis restarted without persistence would), the instances restore the
// triggers from their views under a new epoch, recreate the ingest log's
// group, and events published meanwhile are fanned out and delivered.
func TestStoreDataLossIsRepaired(t *testing.T) {
	b := testenv.Real(t)
	inv := &countingInvoker{seen: map[string]int{}}
	shared := func(_ *Config, i *delivery.Invoker) { *i = inv }
	rs := []*Router{startRouter(t, b.Client, b.Prefix, shared), startRouter(t, b.Client, b.Prefix, shared)}
	for _, name := range []string{"one", "two"} {
		_, _, err := rs[0].PutTrigger(t.Context(), testTrigger(name, "both"), store.PutApply, 0)
		require.NoError(t, err)
	}
	_, _, err := rs[0].DeleteTrigger(t.Context(), "one", false)
	require.NoError(t, err)
	_, _, err = rs[0].PutTrigger(t.Context(), testTrigger("one", "both"), store.PutApply, 0)
	require.NoError(t, err)
	before, err := rs[0].store.CurrentVersion(t.Context())
	require.NoError(t, err)
	stored, err := rs[0].store.GetTrigger(t.Context(), "one")
	require.NoError(t, err)

	keys, err := b.Client.Keys(t.Context(), b.Prefix+":*").Result()
	require.NoError(t, err)
	require.NoError(t, b.Client.Del(t.Context(), keys...).Err())

	// Published at once: the log and its group are gone.
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("lost-%d", i)
		ids = append(ids, id)
		res, err := rs[i%2].Publish(t.Context(), []*pb.CloudEvent{event(id, "both")})
		require.NoError(t, err)
		require.Equal(t, 2, res.Routed)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		return inv.count("one", ids...) == len(ids) && inv.count("two", ids...) == len(ids)
	}, "events accepted after the loss are delivered to both triggers")
	testenv.Eventually(t, 20*time.Second, func() bool {
		list, ver, err := rs[1].store.ListTriggers(t.Context())
		return err == nil && len(list) == 2 && ver.Epoch != "" && ver.Epoch != before.Epoch &&
			rs[0].snap.Load().ver == ver && rs[1].snap.Load().ver == ver
	}, "the triggers are back in the store under a new epoch, and both views serve it")
	one, err := rs[1].store.GetTrigger(t.Context(), "one")
	require.NoError(t, err)
	require.True(t, proto.Equal(stored, one), "restored as it was stored, generation and times included")
	for _, r := range rs {
		testenv.Eventually(t, 20*time.Second, func() bool { return r.Ready(t.Context()) == nil }, "ready")
		require.Equal(t, []string{"one", "two"}, matches(r, "both"))
	}
	// Changes work in the new epoch and, once both instances registered
	// again (at their next heartbeat), wait for both.
	testenv.Eventually(t, 20*time.Second, func() bool {
		n, err := b.Client.ZCard(t.Context(), store.NewKeys(b.Prefix).Members()).Result()
		return err == nil && n == 2
	}, "both instances registered again")
	_, lagging, err := rs[1].PutTrigger(t.Context(), testTrigger("three", "three"), store.PutApply, 0)
	require.NoError(t, err)
	require.Empty(t, lagging)
	require.Equal(t, []string{"three"}, matches(rs[0], "three"))
}

// Readiness reports repeated fan-out failures with their reason while the
// store answers, and recovers with the fan-out.
func TestReadinessFollowsTheFanout(t *testing.T) {
	b := testenv.Real(t)
	r := startRouter(t, b.Client, b.Prefix, nil)
	require.NoError(t, r.Ready(t.Context()))
	// The ingest log replaced by a key of another type: every read fails.
	log := store.NewKeys(b.Prefix).Log()
	require.NoError(t, b.Client.Del(t.Context(), log).Err())
	require.NoError(t, b.Client.Set(t.Context(), log, "not a stream", 0).Err())
	var err error
	testenv.Eventually(t, 20*time.Second, func() bool {
		err = r.Ready(t.Context())
		return err != nil
	}, "not ready while the fan-out fails")
	require.ErrorIs(t, err, ErrNotReady)
	require.Contains(t, err.Error(), "fan-out: cannot read the ingest log: WRONGTYPE")
	require.NoError(t, b.Client.Del(t.Context(), log).Err())
	testenv.Eventually(t, 20*time.Second, func() bool { return r.Ready(t.Context()) == nil }, "ready once the fan-out works again")
}

// Losing only the revision counter would count revisions again from 0,
// which views that served higher ones would take as served: it founds a
// new epoch, the views reload, and changes are read-your-writes again.
func TestLostRevisionIsANewEpoch(t *testing.T) {
	b := testenv.Real(t)
	a := startRouter(t, b.Client, b.Prefix, nil)
	o := startRouter(t, b.Client, b.Prefix, nil)
	for i := range 5 {
		_, _, err := a.PutTrigger(t.Context(), testTrigger(fmt.Sprintf("x%d", i), "x"), store.PutApply, 0)
		require.NoError(t, err)
	}
	before := a.snap.Load().ver
	require.NoError(t, b.Client.Del(t.Context(), store.NewKeys(b.Prefix).Revision()).Err())
	// Refused until an instance founded the new epoch, then retried.
	_, lagging, err := a.PutTrigger(t.Context(), testTrigger("y", "y"), store.PutApply, 0)
	require.NoError(t, err)
	require.Empty(t, lagging)
	for _, r := range []*Router{a, o} {
		require.Equal(t, []string{"y"}, matches(r, "y"))
		require.Len(t, matches(r, "x"), 5, "nothing lost")
		require.NotEqual(t, before.Epoch, r.snap.Load().ver.Epoch)
	}
}
