package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
)

func TestQueueLifecycle(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		lease := 10 * time.Second
		held, err := s.Enqueue(ctx, map[string][]store.Item{"t1": {{ID: "1-0", Event: []byte("a")}, {ID: "2-0", Event: []byte("b")}, {ID: "3-0", Event: []byte("c")}}})
		require.NoError(t, err)
		require.EqualValues(t, 3, held["t1"])
		// Same id again is stored once.
		held, err = s.Enqueue(ctx, map[string][]store.Item{"t1": {{ID: "1-0", Event: []byte("a")}}})
		require.NoError(t, err)
		require.EqualValues(t, 3, held["t1"])

		r, err := s.Claim(ctx, "t1", now, 10, 2, lease)
		require.NoError(t, err)
		require.Len(t, r.Items, 2, "limit 2 in flight")
		require.Equal(t, "1-0", r.Items[0].ID)
		require.Equal(t, 1, r.Items[0].Attempt)
		require.Equal(t, []byte("a"), r.Items[0].Event)
		require.EqualValues(t, 1, r.Ready)

		r2, err := s.Claim(ctx, "t1", now, 10, 2, lease)
		require.NoError(t, err)
		require.Empty(t, r2.Items, "limit reached")

		acked, stale, err := s.Ack(ctx, "t1", []store.AttemptRef{{ID: "1-0", Attempt: 1}, {ID: "2-0", Attempt: 7}})
		require.NoError(t, err)
		require.EqualValues(t, 1, acked)
		require.EqualValues(t, 1, stale)

		// 2-0 fails: retry due in 1s.
		n, err := s.ScheduleRetries(ctx, "t1", now, store.Breaker{}, []store.Retry{{AttemptRef: store.AttemptRef{ID: "2-0", Attempt: 1}, Due: now.Add(time.Second), History: []byte("h1")}})
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		r3, err := s.Claim(ctx, "t1", now, 10, 2, lease)
		require.NoError(t, err)
		require.Len(t, r3.Items, 1)
		require.Equal(t, "3-0", r3.Items[0].ID)
		require.Equal(t, now.Add(time.Second).UnixMilli(), r3.NextDue.UnixMilli())

		// After the due time the retry comes first, with attempt 2 and its history.
		r4, err := s.Claim(ctx, "t1", now.Add(2*time.Second), 10, 2, lease)
		require.NoError(t, err)
		require.Len(t, r4.Items, 1)
		require.Equal(t, "2-0", r4.Items[0].ID)
		require.Equal(t, 2, r4.Items[0].Attempt)
		require.Equal(t, []byte("h1"), r4.Items[0].History)

		// 3-0's instance dies: after its lease the attempt is handed back as expired.
		r5, err := s.Claim(ctx, "t1", now.Add(lease+3*time.Second), 10, 2, lease)
		require.NoError(t, err)
		var expired []store.Claimed
		for _, it := range r5.Items {
			if it.Expired {
				expired = append(expired, it)
			}
		}
		require.Len(t, expired, 2) // 3-0 and 2-0 both outlived their leases at that time
		// Dead-letter 2-0.
		dead, evicted, err := s.DeadLetter(ctx, "t1", now, store.Breaker{}, 1, []store.Dead{{AttemptRef: store.AttemptRef{ID: "2-0", Attempt: 2}, Letter: []byte("story"), Failed: true}})
		require.NoError(t, err)
		require.EqualValues(t, 1, dead)
		require.EqualValues(t, 0, evicted)
		st, err := s.Stats(ctx, "t1")
		require.NoError(t, err)
		require.EqualValues(t, 1, st.DeadLetters)
		require.EqualValues(t, 1, st.InFlight)
		require.Equal(t, "1", st.Counters["delivered"])
		require.Equal(t, "1", st.Counters["dead"])
	})
}

func TestBreakerOpensAndProbes(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		br := store.Breaker{Threshold: 2, Cooldown: time.Second, MaxCooldown: time.Minute}
		items := []store.Item{{ID: "1-0", Event: []byte("a")}, {ID: "2-0", Event: []byte("b")}, {ID: "3-0", Event: []byte("c")}}
		_, err := s.Enqueue(ctx, map[string][]store.Item{"t": items})
		require.NoError(t, err)
		r, err := s.Claim(ctx, "t", now, 2, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, r.Items, 2)
		var rs []store.Retry
		for _, it := range r.Items {
			rs = append(rs, store.Retry{AttemptRef: store.AttemptRef{ID: it.ID, Attempt: it.Attempt}, Due: now.Add(time.Hour), Health: true})
		}
		_, err = s.ScheduleRetries(ctx, "t", now, br, rs)
		require.NoError(t, err)
		r, err = s.Claim(ctx, "t", now, 10, 10, time.Minute)
		require.NoError(t, err)
		require.Empty(t, r.Items, "breaker open: nothing claimed")
		require.Equal(t, store.BreakerOpen, r.Breaker)
		r, err = s.Claim(ctx, "t", now.Add(2*time.Second), 10, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, r.Items, 1, "half-open: one probe")
		require.Equal(t, store.BreakerHalfOpen, r.Breaker)
		_, _, err = s.Ack(ctx, "t", []store.AttemptRef{{ID: r.Items[0].ID, Attempt: r.Items[0].Attempt}})
		require.NoError(t, err)
		r, err = s.Claim(ctx, "t", now.Add(2*time.Second), 10, 10, time.Minute)
		require.NoError(t, err)
		require.Equal(t, store.BreakerClosed, r.Breaker)
	})
}

func TestConcurrentTriggerWritesDoNotConflict(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		// No epoch yet: no instance founded one (or the store lost it).
		_, err := s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "early"}, store.PutCreate, 0)
		require.ErrorIs(t, err, store.ErrNoEpoch)
		epoch, founded, _, err := s.Restore(ctx, nil)
		require.NoError(t, err)
		require.True(t, founded)
		errs := make(chan error, 8)
		for w := range 8 {
			go func() {
				for i := range 25 {
					name := fmt.Sprintf("t-%d-%d", w, i)
					_, err := s.PutTrigger(ctx, &switchyardv1.Trigger{Name: name}, store.PutCreate, 0)
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range 8 {
			require.NoError(t, <-errs)
		}
		ts, ver, err := s.ListTriggers(ctx)
		require.NoError(t, err)
		require.Len(t, ts, 200)
		require.Equal(t, store.Version{Epoch: epoch, Rev: 201}, ver, "one revision for the epoch, one per write")
		exist, err := s.TriggersExist(ctx, []string{"t-0-0", "nope"})
		require.NoError(t, err)
		require.Equal(t, []bool{true, false}, exist)
		_, err = s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "t-0-0"}, store.PutCreate, 0)
		require.ErrorIs(t, err, store.ErrExists)
		_, err = s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "t-0-0", Description: "x"}, store.PutUpdate, 7)
		require.ErrorIs(t, err, store.ErrConflict)
	})
}

func TestAddAndOrphans(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		held, err := s.Add(ctx, map[string][]store.Item{
			"a": {{ID: "1-x.1", Event: []byte("one")}, {ID: "1-x.2", Event: []byte("two")}, {ID: "1-x.3", Event: []byte("three")}},
			"b": {{ID: "1-x.4", Event: []byte("four")}},
		})
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"a": 3, "b": 1}, held)

		// The body of 1-x.2 vanishes while its id waits (a purge racing a
		// publish): the claim ends that attempt as an orphan and hands out
		// the others.
		require.NoError(t, b.Client.HDel(ctx, s.Keys().Queue("a").Events, "1-x.2").Err())
		r, err := s.Claim(ctx, "a", now, 10, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, r.Items, 2)
		require.Equal(t, "1-x.1", r.Items[0].ID)
		require.Equal(t, []byte("one"), r.Items[0].Event)
		require.Equal(t, "1-x.3", r.Items[1].ID)
		require.Equal(t, []byte("three"), r.Items[1].Event)
		qs, err := s.Stats(ctx, "a")
		require.NoError(t, err)
		require.EqualValues(t, 2, qs.InFlight, "the orphan holds no lease")
		require.Equal(t, "1", qs.Counters["orphans"])
		require.Equal(t, "3", qs.Counters["enqueued"])

		acked, stale, err := s.Ack(ctx, "a", []store.AttemptRef{r.Items[0].AttemptRef(), r.Items[1].AttemptRef()})
		require.NoError(t, err)
		require.EqualValues(t, 2, acked)
		require.Zero(t, stale)
		qs, err = s.Stats(ctx, "a")
		require.NoError(t, err)
		require.Zero(t, qs.Ready+qs.InFlight+qs.Delayed)

		// A claim too large to carry the bodies reads them afterwards; an
		// orphan among them is ended the same way.
		var items []store.Item
		for i := range 40 {
			items = append(items, store.Item{ID: fmt.Sprintf("2-x.%02d", i), Event: []byte(fmt.Sprintf("body %d", i))})
		}
		_, err = s.Add(ctx, map[string][]store.Item{"c": items})
		require.NoError(t, err)
		require.NoError(t, b.Client.HDel(ctx, s.Keys().Queue("c").Events, "2-x.07").Err())
		r, err = s.Claim(ctx, "c", now, 40, 40, time.Minute)
		require.NoError(t, err)
		require.Len(t, r.Items, 39)
		for _, it := range r.Items {
			require.NotEqual(t, "2-x.07", it.ID)
			var n int
			_, err := fmt.Sscanf(it.ID, "2-x.%d", &n)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("body %d", n), string(it.Event))
		}
		qs, err = s.Stats(ctx, "c")
		require.NoError(t, err)
		require.EqualValues(t, 39, qs.InFlight)
		require.Equal(t, "1", qs.Counters["orphans"])
	})
}

// TestInFlightKeysStayWide checks that the in-flight ZSET and attempts HASH
// leave Redis's listpack encoding at the first claim (see wideLua) and that
// their sentinel never shows in a count, a lease time or a claim limit.
func TestInFlightKeysStayWide(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		lease := time.Minute
		var items []store.Item
		for i := range 6 {
			items = append(items, store.Item{ID: fmt.Sprintf("%d-0", i+1), Event: []byte("e")})
		}
		_, err := s.Enqueue(ctx, map[string][]store.Item{"w": items})
		require.NoError(t, err)

		r, err := s.Claim(ctx, "w", now, 3, 4, lease)
		require.NoError(t, err)
		require.Len(t, r.Items, 3)
		require.Equal(t, now.Add(lease).UnixMilli(), r.NextLease.UnixMilli())
		if b.Mini == nil {
			qk := store.NewKeys(b.Prefix).Queue("w")
			require.Equal(t, "skiplist", b.Client.ObjectEncoding(ctx, qk.InFlight).Val())
			require.Equal(t, "hashtable", b.Client.ObjectEncoding(ctx, qk.Attempts).Val())
		}
		st, err := s.Stats(ctx, "w")
		require.NoError(t, err)
		require.EqualValues(t, 3, st.InFlight)

		// The limit counts attempts only: one more fits under 4.
		r, err = s.Claim(ctx, "w", now, 10, 4, lease)
		require.NoError(t, err)
		require.Len(t, r.Items, 1)

		var refs []store.AttemptRef
		for i := range 4 {
			refs = append(refs, store.AttemptRef{ID: fmt.Sprintf("%d-0", i+1), Attempt: 1})
		}
		acked, stale, err := s.Ack(ctx, "w", refs)
		require.NoError(t, err)
		require.EqualValues(t, 4, acked)
		require.Zero(t, stale)

		st, err = s.Stats(ctx, "w")
		require.NoError(t, err)
		require.Zero(t, st.InFlight)
		peeks, err := s.PeekAll(ctx, []string{"w"})
		require.NoError(t, err)
		require.Len(t, peeks, 1)
		require.True(t, peeks[0].NextLease.IsZero(), "no lease left: %v", peeks[0].NextLease)
		r, err = s.Claim(ctx, "w", now, 10, 4, lease)
		require.NoError(t, err)
		require.Len(t, r.Items, 2)
		require.False(t, r.NextLease.IsZero())
	})
}

// TestAckAndClaim: the claim that follows the acks in the same round trip
// sees the slots they freed, and is limited as a Claim is; a stale ack
// frees nothing.
func TestAckAndClaim(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		lease := 10 * time.Second
		var items []store.Item
		for i := range 6 {
			items = append(items, store.Item{ID: fmt.Sprintf("%d-0", i+1), Event: []byte{byte('a' + i)}})
		}
		_, err := s.Enqueue(ctx, map[string][]store.Item{"t1": items})
		require.NoError(t, err)
		r, err := s.Claim(ctx, "t1", now, 10, 2, lease)
		require.NoError(t, err)
		require.Len(t, r.Items, 2)

		r, stale, acked, err := s.AckAndClaim(ctx, "t1", []store.AttemptRef{{ID: "1-0", Attempt: 1}, {ID: "2-0", Attempt: 9}}, now, 10, 2, lease)
		require.NoError(t, err)
		require.True(t, acked)
		require.EqualValues(t, 1, stale, "2-0 is at attempt 1, not 9")
		require.Len(t, r.Items, 1, "one slot freed, limit 2")
		require.Equal(t, "3-0", r.Items[0].ID)
		require.Equal(t, []byte("c"), r.Items[0].Event)
		require.EqualValues(t, 3, r.Ready)

		r, stale, acked, err = s.AckAndClaim(ctx, "t1", []store.AttemptRef{{ID: "2-0", Attempt: 1}, {ID: "3-0", Attempt: 1}}, now, 1, 2, lease)
		require.NoError(t, err)
		require.True(t, acked)
		require.Zero(t, stale)
		require.Len(t, r.Items, 1, "want 1")
		require.Equal(t, "4-0", r.Items[0].ID)
		st, err := s.Stats(ctx, "t1")
		require.NoError(t, err)
		require.EqualValues(t, 1, st.InFlight)
		require.Equal(t, "3", st.Counters["delivered"])
		require.EqualValues(t, 2, st.Ready)
		require.EqualValues(t, 3, r.Held)
	})
}

// TestAddAndClaim: the claims that follow the write in the same round trip
// see its items, are limited as a Claim is, and a trigger without a claim
// is only written.
func TestAddAndClaim(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		lease := 10 * time.Second
		held, claimed, claimErr, err := s.AddAndClaim(ctx, map[string][]store.Item{
			"t1": {{ID: "1-0", Event: []byte("a")}, {ID: "2-0", Event: []byte("b")}, {ID: "3-0", Event: []byte("c")}},
			"t2": {{ID: "4-0", Event: []byte("d")}},
		}, now, map[string]store.ClaimRequest{"t1": {Want: 8, Limit: 2, Lease: lease}})
		require.NoError(t, err)
		require.NoError(t, claimErr)
		require.Equal(t, map[string]int64{"t1": 3, "t2": 1}, held)
		require.Len(t, claimed, 1)
		r := claimed["t1"]
		require.Len(t, r.Items, 2, "limit 2")
		require.Equal(t, "1-0", r.Items[0].ID)
		require.Equal(t, []byte("a"), r.Items[0].Event)
		require.Equal(t, 1, r.Items[0].Attempt)
		require.EqualValues(t, 1, r.Ready)
		require.Equal(t, store.BreakerClosed, r.Breaker)

		r2, err := s.Claim(ctx, "t2", now, 8, 2, lease)
		require.NoError(t, err)
		require.Len(t, r2.Items, 1)
		require.Equal(t, []byte("d"), r2.Items[0].Event)

		// Without claims it is a plain Add.
		held, claimed, claimErr, err = s.AddAndClaim(ctx, map[string][]store.Item{"t2": {{ID: "5-0", Event: []byte("e")}}}, now, nil)
		require.NoError(t, err)
		require.NoError(t, claimErr)
		require.Empty(t, claimed)
		require.Equal(t, map[string]int64{"t2": 2}, held)
		st, err := s.Stats(ctx, "t1")
		require.NoError(t, err)
		require.EqualValues(t, 2, st.InFlight)
		require.Equal(t, "3", st.Counters["enqueued"])
	})
}

// TestAddAndClaimWriteFails: a write the store refuses, inside the
// transaction or before it, is reported as the write's error, not as a claim's.
func TestAddAndClaimWriteFails(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		// Another type at the events key: HSET fails inside EXEC.
		require.NoError(t, b.Client.Set(ctx, s.Keys().Queue("t1").Events, "x", 0).Err())
		_, claimed, _, err := s.AddAndClaim(ctx, map[string][]store.Item{"t1": {{ID: "1-0", Event: []byte("a")}}},
			time.Now(), map[string]store.ClaimRequest{"t1": {Want: 1, Limit: 1, Lease: time.Second}})
		require.ErrorContains(t, err, "WRONGTYPE")
		require.Nil(t, claimed)
	})
	t.Run("unreachable", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
		defer c.Close()
		s := store.New(c, "x")
		_, _, _, err := s.AddAndClaim(context.Background(), map[string][]store.Item{"t1": {{ID: "1-0", Event: []byte("a")}}},
			time.Now(), map[string]store.ClaimRequest{"t1": {Want: 1, Limit: 1, Lease: time.Second}})
		require.ErrorContains(t, err, "queue:")
	})
}

// TestAckWithLetters: the attempts are acknowledged and the letters added in
// one step; a stale attempt still gets its letters (the replies came from a
// run that happened); the DLQ's cap evicts the oldest entries and counts them.
func TestAckWithLetters(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		_, err := s.Enqueue(ctx, map[string][]store.Item{"t1": {{ID: "1-0", Event: []byte("a")}, {ID: "2-0", Event: []byte("b")}, {ID: "3-0", Event: []byte("c")}}})
		require.NoError(t, err)
		r, err := s.Claim(ctx, "t1", now, 10, 10, 10*time.Second)
		require.NoError(t, err)
		require.Len(t, r.Items, 3)

		stale, evicted, err := s.AckWithLetters(ctx, "t1", 0, []store.LetteredAck{
			{AttemptRef: store.AttemptRef{ID: "1-0", Attempt: 1}, Letters: []store.Letter{{Event: []byte("r1"), Letter: []byte("d1")}, {Event: []byte("r2"), Letter: []byte("d2")}}},
			{AttemptRef: store.AttemptRef{ID: "2-0", Attempt: 5}, Letters: []store.Letter{{Event: []byte("r3"), Letter: []byte("d3")}}},
		})
		require.NoError(t, err)
		require.EqualValues(t, 1, stale, "2-0 is at attempt 1, not 5")
		require.Zero(t, evicted)
		entries, err := s.ListDLQ(ctx, "t1", "-", 10)
		require.NoError(t, err)
		require.Len(t, entries, 3)
		for i, want := range []string{"r1", "r2", "r3"} {
			require.Equal(t, want, string(entries[i].Event))
			require.Equal(t, "d"+want[1:], string(entries[i].Letter))
		}
		st, err := s.Stats(ctx, "t1")
		require.NoError(t, err)
		require.Equal(t, "1", st.Counters["delivered"])
		require.Equal(t, "3", st.Counters["dead"], "letters count as dead-letter additions")
		require.EqualValues(t, 2, st.InFlight, "2-0 (stale ack) and 3-0 stay in flight")

		stale, evicted, err = s.AckWithLetters(ctx, "t1", 2, []store.LetteredAck{
			{AttemptRef: store.AttemptRef{ID: "3-0", Attempt: 1}, Letters: []store.Letter{{Event: []byte("r4"), Letter: []byte("d4")}}},
		})
		require.NoError(t, err)
		require.Zero(t, stale)
		require.EqualValues(t, 2, evicted)
		entries, err = s.ListDLQ(ctx, "t1", "-", 10)
		require.NoError(t, err)
		require.Len(t, entries, 2)
		require.Equal(t, "r3", string(entries[0].Event))
		require.Equal(t, "r4", string(entries[1].Event))
		st, err = s.Stats(ctx, "t1")
		require.NoError(t, err)
		require.Equal(t, "2", st.Counters["delivered"])
		require.Equal(t, "2", st.Counters["dlq_evicted"])
	})
}
