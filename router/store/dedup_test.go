package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

func dedupItem(id, source, evID string, window time.Duration) store.Item {
	return store.Item{ID: id, Event: []byte("body of " + id), DedupKey: store.DedupKey(source, evID), DedupWindow: window}
}

func duplicates(items []store.Item) (n int) {
	for _, it := range items {
		if it.Duplicate {
			n++
		}
	}
	return n
}

func TestDedupKey(t *testing.T) {
	require.Len(t, store.DedupKey("/s", "1"), 16)
	require.Equal(t, store.DedupKey("/s", "1"), store.DedupKey("/s", "1"))
	require.NotEqual(t, store.DedupKey("a", "bc"), store.DedupKey("ab", "c"), "the source's length is part of the key")
	require.NotEqual(t, store.DedupKey("/s", "1"), store.DedupKey("/s", "2"))
}

// TestDedupEnqueue queues copies of one (source, id) by every path that
// queues (the fan-out's Enqueue and the direct Add), within one batch and
// across calls: one is queued, the others are marked and counted.
func TestDedupEnqueue(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		w := time.Minute
		for name, queue := range map[string]func(map[string][]store.Item) (map[string]int64, error){
			"enqueue": func(m map[string][]store.Item) (map[string]int64, error) { return s.Enqueue(ctx, m) },
			"add":     func(m map[string][]store.Item) (map[string]int64, error) { return s.Add(ctx, m) },
		} {
			t.Run(name, func(t *testing.T) {
				trig := "dd-" + name
				first := []store.Item{dedupItem("1-0", "/s", "a", w), dedupItem("2-0", "/s", "b", w), dedupItem("3-0", "/s", "a", w)}
				held, err := queue(map[string][]store.Item{trig: first})
				require.NoError(t, err)
				require.EqualValues(t, 2, held[trig], "the copy within the batch is not queued")
				require.Equal(t, []bool{false, false, true}, []bool{first[0].Duplicate, first[1].Duplicate, first[2].Duplicate})

				again := []store.Item{dedupItem("4-0", "/s", "b", w), dedupItem("5-0", "/other", "b", w), dedupItem("6-0", "/s", "c", 0)}
				again[2].DedupKey = "" // no check for this one
				again = append(again, store.Item{ID: "7-0", Event: []byte("x")})
				held, err = queue(map[string][]store.Item{trig: again})
				require.NoError(t, err)
				require.EqualValues(t, 5, held[trig])
				require.True(t, again[0].Duplicate, "same source and id as an event queued before")
				require.False(t, again[1].Duplicate, "another source")
				require.Equal(t, 1, duplicates(again))

				qs, err := s.Stats(ctx, trig)
				require.NoError(t, err)
				require.Equal(t, "2", qs.Counters["duplicates"])
				require.Equal(t, "5", qs.Counters["enqueued"])
				require.EqualValues(t, 5, qs.Ready)
				r, err := s.Claim(ctx, trig, time.Now(), 10, 10, time.Minute)
				require.NoError(t, err)
				var ids []string
				for _, it := range r.Items {
					ids = append(ids, it.ID)
				}
				require.Equal(t, []string{"1-0", "2-0", "5-0", "6-0", "7-0"}, ids)
			})
		}
	})
}

// TestDedupRecordAgain: a record fanned out again (a takeover after a
// crash) has the id it was queued with: skipped as before, not counted.
func TestDedupRecordAgain(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		for range 2 {
			items := []store.Item{dedupItem("1-0", "/s", "a", time.Minute)}
			held, err := s.Enqueue(ctx, map[string][]store.Item{"t": items})
			require.NoError(t, err)
			require.EqualValues(t, 1, held["t"])
			require.False(t, items[0].Duplicate)
		}
		qs, err := s.Stats(ctx, "t")
		require.NoError(t, err)
		require.Empty(t, qs.Counters["duplicates"])
	})
}

// TestDedupWindowEnds: once the window has passed, the same (source, id)
// is an event again, and the set's memory goes with the window.
func TestDedupWindowEnds(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		w := 300 * time.Millisecond
		items := []store.Item{dedupItem("1-0", "/s", "a", w)}
		_, err := s.Add(ctx, map[string][]store.Item{"t": items})
		require.NoError(t, err)
		if b.Mini == nil {
			ttl, err := b.Client.PTTL(ctx, s.Keys().Queue("t").Dedup).Result()
			require.NoError(t, err)
			require.Greater(t, ttl, time.Duration(0))
			require.LessOrEqual(t, ttl, w)
		}
		n := 1
		testenv.Eventually(t, 5*time.Second, func() bool {
			n++
			items := []store.Item{dedupItem(fmt.Sprintf("%d-0", n), "/s", "a", w)}
			_, err := s.Add(ctx, map[string][]store.Item{"t": items})
			require.NoError(t, err)
			return !items[0].Duplicate
		}, "the key accepted again once the window passed")
		card, err := b.Client.ZCard(ctx, s.Keys().Queue("t").Dedup).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, card, "the set holds the keys of one window")
	})
}

// TestDedupConcurrentInstances races copies of the same events from two
// stores (two instances' clients), by both paths at once, into triggers
// spread over hash slots: each trigger queues each event once.
func TestDedupConcurrentInstances(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		other := b.Client
		if b.Mini == nil {
			var err error
			other, err = newClientLike(t, b)
			require.NoError(t, err)
			defer other.Close()
		}
		stores := []*store.Store{store.New(b.Client, b.Prefix), store.New(other, b.Prefix)}
		triggers := []string{"race-a", "race-b", "race-c", "race-d"}
		const events, copies = 50, 4
		var wg sync.WaitGroup
		errs := make(chan error, copies*len(stores))
		for c := range copies {
			for si, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					batches := map[string][]store.Item{}
					for _, trig := range triggers {
						for e := range events {
							batches[trig] = append(batches[trig], dedupItem(fmt.Sprintf("%d-%d.%d", e, si, c), "/race", fmt.Sprint(e), time.Minute))
						}
					}
					var err error
					if c%2 == 0 {
						_, err = s.Enqueue(ctx, batches)
					} else {
						_, err = s.Add(ctx, batches)
					}
					errs <- err
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for _, trig := range triggers {
			qs, err := stores[0].Stats(ctx, trig)
			require.NoError(t, err)
			require.EqualValues(t, events, qs.Ready, trig)
			require.Equal(t, fmt.Sprint(events*(copies*len(stores)-1)), qs.Counters["duplicates"], trig)
		}
		if b.Name == "cluster" {
			// Each trigger's set is in its queue's slot (one atomic step
			// with the enqueue), and the triggers span several slots.
			slots := map[int64]bool{}
			for _, trig := range triggers {
				q := stores[0].Keys().Queue(trig)
				qs, err := b.Client.ClusterKeySlot(ctx, q.Ready).Result()
				require.NoError(t, err)
				ds, err := b.Client.ClusterKeySlot(ctx, q.Dedup).Result()
				require.NoError(t, err)
				require.Equal(t, qs, ds)
				slots[qs] = true
			}
			require.Greater(t, len(slots), 1)
		}
	})
}

// newClientLike opens a second client to b's server (a second instance).
func newClientLike(t *testing.T, b testenv.Backend) (redis.UniversalClient, error) {
	if b.Name == "cluster" {
		return testenv.SharedCluster(t).Client(), nil
	}
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

// TestDedupOutOfMemory: with Redis out of memory a dedup enqueue is refused
// as any publish is, having changed nothing (not even dropping the keys
// that left the window: its first write is the one Redis refuses), and
// the fan-out's variant for nearly empty queues still queues, checked.
func TestDedupOutOfMemory(t *testing.T) {
	b := testenv.StartRedis(t, "--maxmemory-policy", "noeviction")
	ctx := context.Background()
	s := store.New(b.Client, b.Prefix)
	require.NoError(t, s.LoadScripts(ctx))
	w := 50 * time.Millisecond
	// Added with a longer window, so that the set outlives w.
	_, err := s.Add(ctx, map[string][]store.Item{"t": {dedupItem("1-0", "/s", "old", time.Minute)}})
	require.NoError(t, err)
	set := s.Keys().Queue("t").Dedup
	added, err := b.Client.ZScore(ctx, set, store.DedupKey("/s", "old")).Result()
	require.NoError(t, err)
	testenv.Eventually(t, 5*time.Second, func() bool { // the window passes on Redis's clock
		now, err := b.Client.Time(ctx).Result()
		return err == nil && float64(now.UnixMilli()) > added+float64(w.Milliseconds())
	}, "the key older than the window")

	setMaxMemory(t, b.Client, "1")
	_, err = s.Add(ctx, map[string][]store.Item{"t": {dedupItem("2-0", "/s", "new", w)}})
	require.ErrorIs(t, err, store.ErrFull)
	_, err = s.Enqueue(ctx, map[string][]store.Item{"t": {dedupItem("3-0", "/s", "new", w)}})
	require.ErrorIs(t, err, store.ErrFull)
	card, err := b.Client.ZCard(ctx, set).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, card, "the refused scripts changed nothing")
	qs, err := s.Stats(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 1, qs.Ready)

	items := []store.Item{dedupItem("4-0", "/s", "new", w), dedupItem("5-0", "/s", "new", w)}
	held, err := s.EnqueueWhenFull(ctx, 5, map[string][]store.Item{"t": items})
	require.NoError(t, err)
	require.EqualValues(t, 2, held["t"])
	require.True(t, items[1].Duplicate)
}

// TestDedupAfterScriptFlush: Redis lost its scripts (a restart) between two
// publishes; the direct path's dedup script, refused inside the
// transaction after the bodies were stored, is loaded and run alone: the
// event is queued once, the copy's body removed.
func TestDedupAfterScriptFlush(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		flush := func() {
			if cc, ok := b.Client.(*redis.ClusterClient); ok {
				require.NoError(t, cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() }))
				return
			}
			require.NoError(t, b.Client.ScriptFlush(ctx).Err())
		}
		flush()
		first := []store.Item{dedupItem("1-x.1", "/s", "a", time.Minute)}
		held, err := s.Add(ctx, map[string][]store.Item{"t": first})
		require.NoError(t, err)
		require.EqualValues(t, 1, held["t"])
		flush()
		copies := []store.Item{dedupItem("1-x.2", "/s", "a", time.Minute), dedupItem("1-x.3", "/s", "b", time.Minute)}
		held, err = s.Add(ctx, map[string][]store.Item{"t": copies})
		require.NoError(t, err)
		require.EqualValues(t, 2, held["t"], "the copy's body is not kept")
		require.True(t, copies[0].Duplicate)
		require.False(t, copies[1].Duplicate)
		qs, err := s.Stats(ctx, "t")
		require.NoError(t, err)
		require.EqualValues(t, 2, qs.Ready)
		require.Equal(t, "1", qs.Counters["duplicates"])
	})
}

// TestDedupDelayed: a batch for a trigger with a dedup window that holds
// delayed events (deliverafter) is checked as any other, by the fan-out's
// Enqueue and the direct Add, and its delayed events still wait for their
// time.
func TestDedupDelayed(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		due := now.Add(time.Hour)
		for name, queue := range map[string]func(map[string][]store.Item) (map[string]int64, error){
			"enqueue": func(m map[string][]store.Item) (map[string]int64, error) { return s.Enqueue(ctx, m) },
			"add":     func(m map[string][]store.Item) (map[string]int64, error) { return s.Add(ctx, m) },
		} {
			t.Run(name, func(t *testing.T) {
				trig := "dl-" + name
				item := func(id, evID string, at time.Time) store.Item {
					it := dedupItem(id, "/s", evID, time.Minute)
					it.Due = at
					return it
				}
				first := []store.Item{item("1-0", "late", due), item("2-0", "now", time.Time{}), item("3-0", "late", due)}
				held, err := queue(map[string][]store.Item{trig: first})
				require.NoError(t, err)
				require.EqualValues(t, 2, held[trig])
				require.Equal(t, []bool{false, false, true}, []bool{first[0].Duplicate, first[1].Duplicate, first[2].Duplicate})
				again := []store.Item{item("4-0", "late", due), item("5-0", "now", due), item("6-0", "later", due.Add(time.Minute))}
				held, err = queue(map[string][]store.Item{trig: again})
				require.NoError(t, err)
				require.EqualValues(t, 3, held[trig])
				require.Equal(t, []bool{true, true, false}, []bool{again[0].Duplicate, again[1].Duplicate, again[2].Duplicate})
				qs, err := s.Stats(ctx, trig)
				require.NoError(t, err)
				require.Equal(t, "3", qs.Counters["duplicates"])
				waiting, err := s.Waiting(ctx, trig, now)
				require.NoError(t, err)
				require.EqualValues(t, 2, waiting)

				r, err := s.Claim(ctx, trig, now, 10, 10, 3*time.Hour)
				require.NoError(t, err)
				require.Len(t, r.Items, 1)
				require.Equal(t, "2-0", r.Items[0].ID, "only the event due now")
				require.Equal(t, due.UnixMilli(), r.NextDue.UnixMilli())
				r, err = s.Claim(ctx, trig, due.Add(2*time.Minute), 10, 10, 3*time.Hour)
				require.NoError(t, err)
				var ids []string
				for _, it := range r.Items {
					ids = append(ids, it.ID)
				}
				require.ElementsMatch(t, []string{"1-0", "6-0"}, ids)
			})
		}
	})
}
