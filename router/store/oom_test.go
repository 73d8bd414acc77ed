package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// setMaxMemory sets the server's memory limit; 1 byte makes every server
// out of memory at once.
func setMaxMemory(t *testing.T, c redis.UniversalClient, v string) {
	t.Helper()
	require.NoError(t, c.ConfigSet(context.Background(), "maxmemory", v).Err())
}

// When Redis is out of memory (noeviction), storing new events fails with
// ErrFull, and every step that settles or moves events already stored
// still runs: claims (in MULTI otherwise), acks, retries, dead letters,
// acks with refused replies, the fan-out's log acknowledgement, DLQ
// retention and purges. Once memory is free, writes work again.
func TestOutOfMemory(t *testing.T) {
	b := testenv.StartRedis(t, "--maxmemory-policy", "noeviction")
	ctx := context.Background()
	s := store.New(b.Client, b.Prefix)
	require.NoError(t, s.LoadScripts(ctx))
	require.NoError(t, s.EnsureLogGroup(ctx))
	now := time.Now()
	lease := 10 * time.Second
	body := []byte(strings.Repeat("x", 100))
	items := make([]store.Item, 20)
	for i := range items {
		items[i] = store.Item{ID: fmt.Sprintf("%d-0", i+1), Event: body}
	}
	_, err := s.Add(ctx, map[string][]store.Item{"t": items})
	require.NoError(t, err)
	require.NoError(t, s.AppendLog(ctx, []store.LogRecord{{Event: body, Triggers: []string{"t"}}, {Event: body, Triggers: []string{"t"}}}))
	for i := range 5 {
		require.NoError(t, b.Client.XAdd(ctx, &redis.XAddArgs{Stream: s.Keys().Queue("t").DLQ, ID: fmt.Sprintf("%d-0", i+1), Values: []any{"e", "x", "d", "y"}}).Err())
	}

	setMaxMemory(t, b.Client, "1")
	m, err := s.Memory(ctx)
	require.NoError(t, err)
	require.True(t, m.Full(), "%+v", m)
	require.Equal(t, "noeviction", m.Policy)
	require.False(t, m.Evicts())

	// New events: refused, recognisably.
	_, err = s.Add(ctx, map[string][]store.Item{"t": {{ID: "100-0", Event: body}}})
	require.ErrorIs(t, err, store.ErrFull)
	require.True(t, store.IsFull(err))
	_, _, claimErr, err := s.AddAndClaim(ctx, map[string][]store.Item{"t": {{ID: "101-0", Event: body}}}, now, map[string]store.ClaimRequest{"t": {Want: 1, Limit: 10, Lease: lease}})
	require.ErrorIs(t, err, store.ErrFull)
	require.NoError(t, claimErr)
	require.ErrorIs(t, s.AppendLog(ctx, []store.LogRecord{{Event: body, Triggers: []string{"t"}}}), store.ErrFull)
	_, err = s.Enqueue(ctx, map[string][]store.Item{"u": {{ID: "1-0", Event: body}}})
	require.ErrorIs(t, err, store.ErrFull)
	// The fan-out goes on into queues that are (nearly) empty, only.
	held, err := s.EnqueueWhenFull(ctx, 5, map[string][]store.Item{"u": {{ID: "1-0", Event: body}}})
	require.NoError(t, err)
	require.EqualValues(t, 1, held["u"])
	_, err = s.EnqueueWhenFull(ctx, 5, map[string][]store.Item{"t": {{ID: "103-0", Event: body}}, "u": {{ID: "2-0", Event: body}}})
	require.ErrorIs(t, err, store.ErrFull)
	require.Contains(t, err.Error(), "the queues of t hold more than 5 events")
	st, err := s.Stats(ctx, "u")
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Ready, "u had room")

	// Delivery goes on.
	r, err := s.Claim(ctx, "t", now, 6, 100, lease)
	require.NoError(t, err)
	require.Len(t, r.Items, 6)
	require.Equal(t, body, r.Items[0].Event)
	acked, stale, err := s.Ack(ctx, "t", []store.AttemptRef{r.Items[0].AttemptRef()})
	require.NoError(t, err)
	require.EqualValues(t, 1, acked)
	require.Zero(t, stale)
	n, err := s.ScheduleRetries(ctx, "t", now, store.Breaker{Threshold: 5, Cooldown: time.Second, MaxCooldown: time.Minute},
		[]store.Retry{{AttemptRef: r.Items[1].AttemptRef(), Due: now.Add(time.Hour), History: []byte("h"), Health: true}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	dead, _, err := s.DeadLetter(ctx, "t", now, store.Breaker{}, 0, []store.Dead{{AttemptRef: r.Items[2].AttemptRef(), Letter: []byte("story"), Failed: true}})
	require.NoError(t, err)
	require.EqualValues(t, 1, dead)
	_, _, err = s.AckWithLetters(ctx, "t", 0, []store.LetteredAck{{AttemptRef: r.Items[3].AttemptRef(), Letters: []store.Letter{{Event: []byte("reply"), Letter: []byte("refused")}}}})
	require.NoError(t, err)
	res, stale, _, err := s.AckAndClaim(ctx, "t", []store.AttemptRef{r.Items[4].AttemptRef()}, now, 3, 100, lease)
	require.NoError(t, err)
	require.Zero(t, stale)
	require.Len(t, res.Items, 3)
	peeks, err := s.PeekAll(ctx, []string{"t"})
	require.NoError(t, err)
	require.Len(t, peeks, 1)
	_, err = s.Stats(ctx, "t")
	require.NoError(t, err)

	// The fan-out reads and acknowledges what was logged before.
	recs, err := s.ReadLog(ctx, "c", 10, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.NoError(t, s.AckLog(ctx, recs))
	logLen, err := s.LogLength(ctx)
	require.NoError(t, err)
	require.Zero(t, logLen)
	admitted, err := s.Admitted(ctx)
	require.NoError(t, err)
	require.Zero(t, admitted["t"])

	// Retention and purges free memory.
	evicted, err := s.CapDLQ(ctx, "t", 4)
	require.NoError(t, err)
	require.EqualValues(t, 3, evicted, "5 entries, the dead letter and the refused reply, capped at 4")
	trimmed, err := s.TrimDLQ(ctx, "t", time.UnixMilli(5))
	require.NoError(t, err)
	require.EqualValues(t, 1, trimmed, "entry 4-0 was the only one left older than 5")
	purged, err := s.PurgeDLQAll(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 3, purged)

	// Memory back: storing works again.
	setMaxMemory(t, b.Client, "0")
	_, err = s.Add(ctx, map[string][]store.Item{"t": {{ID: "102-0", Event: body}}})
	require.NoError(t, err)
}

// An evicting policy is reported as such; the volatile ones delete only
// keys with a time to live, which hold no events.
func TestMemoryPolicy(t *testing.T) {
	b := testenv.StartRedis(t, "--maxmemory-policy", "allkeys-lru", "--maxmemory", "64mb")
	ctx := context.Background()
	s := store.New(b.Client, b.Prefix)
	m, err := s.Memory(ctx)
	require.NoError(t, err)
	require.True(t, m.Known)
	require.EqualValues(t, 64<<20, m.Max)
	require.True(t, m.Evicts())
	require.False(t, m.Full())
	require.NoError(t, b.Client.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err())
	m, err = s.Memory(ctx)
	require.NoError(t, err)
	require.False(t, m.Evicts())

	e := testenv.Embedded(t)
	m, err = store.New(e.Client, e.Prefix).Memory(ctx)
	require.NoError(t, err)
	require.False(t, m.Known, "miniredis does not report its memory")
	require.False(t, m.Full())
	require.False(t, m.Evicts())
}

// DLQ retention evicts in bounded chunks, counting exactly: a cap lowered
// far below the stream's length is reached over several calls, each
// evicting at most 1,000 entries, the dead-letter path included.
func TestDLQEvictionIsChunked(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		key := s.Keys().Queue("t").DLQ
		p := b.Client.Pipeline()
		for i := range 2500 {
			p.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", i+1), Values: []any{"e", "x", "d", "y"}})
		}
		_, err := p.Exec(ctx)
		require.NoError(t, err)

		// One event dead-lettered with a cap of 10: the script evicts one
		// chunk only.
		_, err = s.Add(ctx, map[string][]store.Item{"t": {{ID: "1-1", Event: []byte("ev")}}})
		require.NoError(t, err)
		r, err := s.Claim(ctx, "t", time.Now(), 1, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, r.Items, 1)
		dead, evicted, err := s.DeadLetter(ctx, "t", time.Now(), store.Breaker{}, 10, []store.Dead{{AttemptRef: r.Items[0].AttemptRef(), Letter: []byte("l")}})
		require.NoError(t, err)
		require.EqualValues(t, 1, dead)
		require.EqualValues(t, 1000, evicted)
		require.EqualValues(t, 1501, b.Client.XLen(ctx, key).Val())

		// The age limit: entries 1001-0 … 1500-0 are older than 1501.
		trimmed, err := s.TrimDLQ(ctx, "t", time.UnixMilli(1501))
		require.NoError(t, err)
		require.EqualValues(t, 500, trimmed)
		first, err := b.Client.XRangeN(ctx, key, "-", "+", 1).Result()
		require.NoError(t, err)
		require.Equal(t, "1501-0", first[0].ID)

		// The rest of the count cap, over two calls of the script.
		evicted, err = s.CapDLQ(ctx, "t", 10)
		require.NoError(t, err)
		require.EqualValues(t, 991, evicted)
		require.EqualValues(t, 10, b.Client.XLen(ctx, key).Val())
		st, err := s.Stats(ctx, "t")
		require.NoError(t, err)
		require.Equal(t, "2491", st.Counters["dlq_evicted"], "every eviction counted")

		// A purge is not an eviction.
		purged, err := s.PurgeDLQBefore(ctx, "t", time.UnixMilli(2496))
		require.NoError(t, err)
		require.EqualValues(t, 4, purged, "2492-0 … 2495-0")
		st, err = s.Stats(ctx, "t")
		require.NoError(t, err)
		require.Equal(t, "2491", st.Counters["dlq_evicted"])
	})
}
