package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// claimIDs claims up to want attempts and returns their ids and refs.
func claimIDs(t *testing.T, s *store.Store, trig string, now time.Time, want int) ([]string, []store.AttemptRef) {
	t.Helper()
	r, err := s.Claim(context.Background(), trig, now, want, 100, 10*time.Second)
	require.NoError(t, err)
	var ids []string
	var refs []store.AttemptRef
	for _, it := range r.Items {
		ids = append(ids, it.ID)
		refs = append(refs, it.AttemptRef())
	}
	return ids, refs
}

func laneItems(lane string, block bool, ids ...string) []store.Item {
	out := make([]store.Item, len(ids))
	for i, id := range ids {
		out[i] = store.Item{ID: id, Event: []byte("ev " + id), Lane: store.LaneName(lane), BlockOnDead: block}
	}
	return out
}

func TestLanesOneAtATimeInOrder(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		// a1 a2 through the fan-out's script, b1 and a3 b2 through the
		// direct path's transaction: both keep each lane's order.
		_, err := s.Enqueue(ctx, map[string][]store.Item{"o": append(laneItems("a", false, "a1", "a2"), laneItems("b", false, "b1")...)})
		require.NoError(t, err)
		held, err := s.Add(ctx, map[string][]store.Item{"o": append(laneItems("a", false, "a3"), laneItems("b", false, "b2")...)})
		require.NoError(t, err)
		require.EqualValues(t, 5, held["o"])

		ids, refs := claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"a1", "b1"}, ids, "one event per lane, the first")
		ls, err := s.LaneStats(ctx, "o", 10)
		require.NoError(t, err)
		require.Equal(t, store.LaneStats{Active: 2, Waiting: 5, Behind: 3}, ls)

		// a1 fails: its lane waits for the retry, b goes on.
		_, err = s.ScheduleRetries(ctx, "o", now, store.Breaker{}, []store.Retry{{AttemptRef: refs[0], Due: now.Add(time.Second)}})
		require.NoError(t, err)
		_, _, err = s.Ack(ctx, "o", refs[1:])
		require.NoError(t, err)
		ids, refs = claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"b2"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)

		// The retry comes due; a1's lease then expires (its instance died):
		// a2 still waits.
		ids, refs = claimIDs(t, s, "o", now.Add(2*time.Second), 10)
		require.Equal(t, []string{"a1"}, ids)
		r, err := s.Claim(ctx, "o", now.Add(time.Minute), 10, 100, 10*time.Second)
		require.NoError(t, err)
		require.Len(t, r.Items, 1)
		require.True(t, r.Items[0].Expired)
		require.Equal(t, "a1", r.Items[0].ID)
		_, _, err = s.Ack(ctx, "o", refs) // the lost instance's late answer
		require.NoError(t, err)
		_, _, err = s.Ack(ctx, "o", []store.AttemptRef{r.Items[0].AttemptRef()})
		require.NoError(t, err)
		ids, refs = claimIDs(t, s, "o", now.Add(time.Minute), 10)
		require.Equal(t, []string{"a2"}, ids)

		// a2 is dead-lettered (on_dead continue): a3 follows.
		_, _, err = s.DeadLetter(ctx, "o", now, store.Breaker{}, 0, []store.Dead{{AttemptRef: refs[0], Letter: []byte("d")}})
		require.NoError(t, err)
		ids, refs = claimIDs(t, s, "o", now.Add(time.Minute), 10)
		require.Equal(t, []string{"a3"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		ls, err = s.LaneStats(ctx, "o", 10)
		require.NoError(t, err)
		require.Equal(t, store.LaneStats{}, ls, "every lane drained")

		// Replaying a2 puts it at the end of its lane, behind a4.
		_, err = s.Enqueue(ctx, map[string][]store.Item{"o": laneItems("a", false, "a4")})
		require.NoError(t, err)
		dl, err := s.ListDLQ(ctx, "o", "-", 10)
		require.NoError(t, err)
		require.Len(t, dl, 1)
		n, _, err := s.Replay(ctx, "o", []string{dl[0].ID}, now)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		ids, refs = claimIDs(t, s, "o", now.Add(time.Minute), 10)
		require.Equal(t, []string{"a4"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		ids, _ = claimIDs(t, s, "o", now.Add(time.Minute), 10)
		require.Equal(t, []string{dlq.ReplayedID("o", dl[0].ID)}, ids)
	})
}

func TestLaneBlockedByDeadLetter(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		_, err := s.Add(ctx, map[string][]store.Item{"o": append(laneItems("k", true, "k1", "k2", "k3"), laneItems("", true, "x1")...)})
		require.NoError(t, err)
		ids, refs := claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"k1", "x1"}, ids)
		_, _, err = s.DeadLetter(ctx, "o", now, store.Breaker{}, 0, []store.Dead{{AttemptRef: refs[0], Letter: []byte("d")}})
		require.NoError(t, err)
		_, _, err = s.Ack(ctx, "o", refs[1:])
		require.NoError(t, err)
		ids, _ = claimIDs(t, s, "o", now, 10)
		require.Empty(t, ids, "the lane is blocked")
		ls, err := s.LaneStats(ctx, "o", 10)
		require.NoError(t, err)
		dl, err := s.ListDLQ(ctx, "o", "-", 10)
		require.NoError(t, err)
		require.Len(t, dl, 1)
		require.Equal(t, store.LaneStats{Active: 1, Blocked: 1, Waiting: 2, Behind: 2, BlockedLanes: []store.BlockedLane{{Lane: "=k", Entry: dl[0].ID}}}, ls)

		// Replaying the dead letter unblocks the lane, the event first.
		n, _, err := s.Replay(ctx, "o", []string{dl[0].ID}, now)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		ids, refs = claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{dlq.ReplayedID("o", dl[0].ID)}, ids)
		// It dies again: blocked again; a skip moves on to k2.
		_, _, err = s.DeadLetter(ctx, "o", now, store.Breaker{}, 0, []store.Dead{{AttemptRef: refs[0], Letter: []byte("d")}})
		require.NoError(t, err)
		ids, _ = claimIDs(t, s, "o", now, 10)
		require.Empty(t, ids)
		ok, err := s.SkipLane(ctx, "o", "=nope")
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = s.SkipLane(ctx, "o", "=k")
		require.NoError(t, err)
		require.True(t, ok)
		ids, refs = claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"k2"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		ids, _ = claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"k3"}, ids)
	})
}

func TestLaneNames(t *testing.T) {
	require.Equal(t, "=", store.LaneName(""))
	require.Equal(t, "=order-7", store.LaneName("order-7"))
	long := strings.Repeat("x", store.MaxLaneKeyBytes+1)
	require.True(t, strings.HasPrefix(store.LaneName(long), "#"))
	require.Len(t, store.LaneName(long), 65)
	require.NotEqual(t, store.LaneName("a\x00b"), store.LaneName("a\x00c"))
	require.Equal(t, "order-7", store.LaneKey(store.LaneName("order-7")))
}

// TestLanesBesideUnorderedEvents: events queued before the trigger became
// ordered keep no lane and go on independently; a batch joining publishes
// from both sides of the change puts the ones without a lane in the
// default lane.
func TestLanesBesideUnorderedEvents(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		_, err := s.Add(ctx, map[string][]store.Item{"o": {{ID: "u1", Event: []byte("u1")}, {ID: "u2", Event: []byte("u2")}}})
		require.NoError(t, err)
		mixed := append(laneItems("k", false, "k1", "k2"), store.Item{ID: "d1", Event: []byte("d1")}, store.Item{ID: "d2", Event: []byte("d2")})
		_, err = s.Add(ctx, map[string][]store.Item{"o": mixed})
		require.NoError(t, err)
		ids, refs := claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"u1", "u2", "k1", "d1"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		ids, refs = claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"k2", "d2"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		ls, err := s.LaneStats(ctx, "o", 10)
		require.NoError(t, err)
		require.Equal(t, store.LaneStats{}, ls)
	})
}

// TestAppendLogAndLanes: the lane events are queued and the log records
// appended (on one node in one transaction; on Redis Cluster the lanes
// first, then the log).
func TestAppendLogAndLanes(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		require.NoError(t, s.EnsureLogGroup(ctx))
		recs := []store.LogRecord{{Event: []byte("e1"), Triggers: []string{"plain"}}}
		held, err := s.AppendLogAndLanes(ctx, map[string][]store.Item{"o": laneItems("k", false, "k1", "k2")}, recs)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"o": 2}, held)
		admitted, err := s.Admitted(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"plain": 1}, admitted)
		ids, _ := claimIDs(t, s, "o", time.Now(), 10)
		require.Equal(t, []string{"k1"}, ids)
	})
}

// TestLanesDedup: an ordered trigger's copies of one (source, id) are
// checked in the script that queues them into their lanes, by every path
// that queues (the fan-out, the direct publish, the ingest log's
// transaction on one node), within a batch and across calls; a record
// fanned out again is skipped, not counted.
func TestLanesDedup(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		require.NoError(t, s.EnsureLogGroup(ctx))
		item := func(id, key, evID string) store.Item {
			it := dedupItem(id, "/s", evID, time.Minute)
			it.Lane = store.LaneName(key)
			return it
		}
		paths := map[string]func([]store.Item) error{
			"enqueue": func(items []store.Item) error {
				_, err := s.Enqueue(ctx, map[string][]store.Item{"o": items})
				return err
			},
			"add": func(items []store.Item) error { _, err := s.Add(ctx, map[string][]store.Item{"o": items}); return err },
		}
		paths["log"] = func(items []store.Item) error {
			_, err := s.AppendLogAndLanes(ctx, map[string][]store.Item{"o": items}, []store.LogRecord{{Event: []byte("x"), Triggers: []string{"plain"}}})
			return err
		}
		for name, queue := range paths {
			first := []store.Item{item(name+"-1", "k", name+"a"), item(name+"-2", "k", name+"b"), item(name+"-3", "j", name+"a")}
			require.NoError(t, queue(first), name)
			require.Equal(t, []bool{false, false, true}, []bool{first[0].Duplicate, first[1].Duplicate, first[2].Duplicate}, "%s: the copy within the batch", name)
			again := []store.Item{item(name+"-4", "k", name+"b"), item(name+"-5", "k", name+"c")}
			require.NoError(t, queue(again), name)
			require.Equal(t, []bool{true, false}, []bool{again[0].Duplicate, again[1].Duplicate}, "%s: a copy of an event queued before", name)
		}
		// A record fanned out again has the id it was queued with.
		rec := []store.Item{item("enqueue-1", "k", "enqueuea")}
		require.NoError(t, paths["enqueue"](rec))
		require.False(t, rec[0].Duplicate)

		qs, err := s.Stats(ctx, "o")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(2*len(paths)), qs.Counters["duplicates"])
		require.Equal(t, fmt.Sprint(3*len(paths)), qs.Counters["enqueued"])
		ls, err := s.LaneStats(ctx, "o", 10)
		require.NoError(t, err)
		require.EqualValues(t, 3*len(paths), ls.Waiting, "the copies are in no lane")
		var order []string
		for {
			ids, refs := claimIDs(t, s, "o", time.Now(), 10)
			if len(ids) == 0 {
				break
			}
			require.Len(t, ids, 1, "one lane, one event at a time")
			order = append(order, ids...)
			_, _, err = s.Ack(ctx, "o", refs)
			require.NoError(t, err)
		}
		require.Len(t, order, 3*len(paths))
	})
}

// TestLanesDelayed: an event whose publisher asked for later delivery
// enters its lane in acceptance order, and once it heads the lane waits for
// its time there (counted as waiting for it), holding the events behind it;
// other lanes go on. One that comes due while behind an earlier event is
// ready as soon as its turn comes.
func TestLanesDelayed(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		due := now.Add(time.Hour)
		delayed := func(it store.Item, at time.Time) store.Item { it.Due = at; return it }
		// k: delayed head, then one due now. m: one due now, then a delayed
		// one, then one due now; queued by the fan-out's script and the
		// direct path's transaction.
		_, err := s.Enqueue(ctx, map[string][]store.Item{"o": {
			delayed(laneItems("k", false, "k1")[0], due), laneItems("k", false, "k2")[0], laneItems("m", false, "m1")[0]}})
		require.NoError(t, err)
		soon := time.Now().Add(300 * time.Millisecond)
		_, err = s.Add(ctx, map[string][]store.Item{"o": {
			delayed(laneItems("m", false, "m2")[0], due.Add(time.Minute)), laneItems("m", false, "m3")[0],
			laneItems("p", false, "p1")[0], delayed(laneItems("p", false, "p2")[0], soon)}})
		require.NoError(t, err)

		ids, refs := claimIDs(t, s, "o", now, 10)
		require.Equal(t, []string{"m1", "p1"}, ids, "k1 waits for its time, k2 behind it")
		waiting, err := s.Waiting(ctx, "o", now)
		require.NoError(t, err)
		require.EqualValues(t, 1, waiting, "k1 waits for its time; m2 and p2 wait behind an earlier event")
		testenv.Eventually(t, 5*time.Second, func() bool { return time.Now().After(soon.Add(10 * time.Millisecond)) }, "p2 due")
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		// m2 now heads its lane and waits for its time; p2 is due.
		r, err := s.Claim(ctx, "o", time.Now(), 10, 100, 10*time.Second)
		require.NoError(t, err)
		require.Len(t, r.Items, 1)
		require.Equal(t, "p2", r.Items[0].ID)
		require.Equal(t, 1, r.Items[0].Attempt)
		require.Equal(t, due.UnixMilli(), r.NextDue.UnixMilli(), "the claim says when to look again")
		_, _, err = s.Ack(ctx, "o", []store.AttemptRef{r.Items[0].AttemptRef()})
		require.NoError(t, err)
		waiting, err = s.Waiting(ctx, "o", time.Now())
		require.NoError(t, err)
		require.EqualValues(t, 2, waiting, "k1 and m2")
		qs, err := s.Stats(ctx, "o")
		require.NoError(t, err)
		require.EqualValues(t, 2, qs.Delayed)
		ls, err := s.LaneStats(ctx, "o", 10)
		require.NoError(t, err)
		require.Equal(t, store.LaneStats{Active: 2, Waiting: 4, Behind: 2}, ls, "k2 and m3 behind")

		later := due.Add(2 * time.Minute)
		ids, refs = claimIDs(t, s, "o", later, 10)
		require.ElementsMatch(t, []string{"k1", "m2"}, ids)
		_, _, err = s.Ack(ctx, "o", refs)
		require.NoError(t, err)
		ids, _ = claimIDs(t, s, "o", later, 10)
		require.ElementsMatch(t, []string{"k2", "m3"}, ids)
	})
}

// TestReplayToLanes: dead letters of one trigger replayed into an ordered
// one go to the end of the lane their LaneFunc names there, with its
// on_dead mode; without a LaneFunc (ReplayTo), into no lane.
func TestReplayToLanes(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		_, err := s.Add(ctx, map[string][]store.Item{"src": {{ID: "1-x.1", Event: []byte("k")}, {ID: "1-x.2", Event: []byte("j")}}})
		require.NoError(t, err)
		_, refs := claimIDs(t, s, "src", now, 10)
		var dead []store.Dead
		for _, ref := range refs {
			dead = append(dead, store.Dead{AttemptRef: ref, Letter: []byte("d")})
		}
		_, _, err = s.DeadLetter(ctx, "src", now, store.Breaker{}, 0, dead)
		require.NoError(t, err)
		dl, err := s.ListDLQ(ctx, "src", "-", 10)
		require.NoError(t, err)
		require.Len(t, dl, 2)

		_, err = s.Add(ctx, map[string][]store.Item{"ord": laneItems("k", false, "k1")})
		require.NoError(t, err)
		byBody := func(ev []byte) (string, bool) { return store.LaneName(string(ev)), true }
		n, missing, err := s.ReplayToLanes(ctx, "src", "ord", []string{dl[0].ID, dl[1].ID}, now, byBody)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		require.Zero(t, missing)
		ls, err := s.LaneStats(ctx, "ord", 10)
		require.NoError(t, err)
		require.Equal(t, store.LaneStats{Active: 2, Waiting: 3, Behind: 1}, ls)
		ids, refs := claimIDs(t, s, "ord", now, 10)
		require.Equal(t, []string{"k1", dlq.ReplayedID("src", dl[1].ID)}, ids, "the replayed k event waits behind k1")
		// Its mode came from the LaneFunc: dead, it blocks its lane.
		_, _, err = s.Ack(ctx, "ord", refs[:1])
		require.NoError(t, err)
		ids, refs = claimIDs(t, s, "ord", now, 10)
		require.Equal(t, []string{dlq.ReplayedID("src", dl[0].ID)}, ids)
		_, _, err = s.DeadLetter(ctx, "ord", now, store.Breaker{}, 0, []store.Dead{{AttemptRef: refs[0], Letter: []byte("d")}})
		require.NoError(t, err)
		ls, err = s.LaneStats(ctx, "ord", 10)
		require.NoError(t, err)
		require.EqualValues(t, 1, ls.Blocked)
	})
}
