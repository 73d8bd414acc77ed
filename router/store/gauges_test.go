package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// GaugesAll reads every queue's figures in one batched read: ready,
// in flight (the wide-encoding sentinel not counted), delayed, dead letters
// held, the head's acceptance time (a replayed head's re-entry time), the
// breaker; a queue never written reads as empty and closed.
func TestGaugesAll(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		acc := now.Add(-time.Minute).UnixMilli()
		id := func(i int) string { return strconv.FormatInt(acc+int64(i), 10) + "-0" }
		var items []store.Item
		for i := range 6 {
			items = append(items, store.Item{ID: id(i), Event: []byte("e")})
		}
		_, err := s.Enqueue(ctx, map[string][]store.Item{"busy": items})
		require.NoError(t, err)
		// Three attempts start; one fails and is scheduled, one is dead.
		r, err := s.Claim(ctx, "busy", now, 3, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, r.Items, 3)
		br := store.Breaker{Threshold: 2, Cooldown: time.Minute, MaxCooldown: time.Hour}
		_, err = s.ScheduleRetries(ctx, "busy", now, br, []store.Retry{{AttemptRef: r.Items[0].AttemptRef(), Due: now.Add(time.Hour), Health: true}})
		require.NoError(t, err)
		_, _, err = s.DeadLetter(ctx, "busy", now, br, 100, []store.Dead{{AttemptRef: r.Items[1].AttemptRef(), Letter: []byte("story"), Failed: true, Health: true}})
		require.NoError(t, err)

		// A replayed event at the head of another queue: its age counts
		// from the replay.
		_, err = s.Enqueue(ctx, map[string][]store.Item{"replayed": {{ID: id(0), Event: []byte("e")}}})
		require.NoError(t, err)
		c, err := s.Claim(ctx, "replayed", now, 1, 1, time.Minute)
		require.NoError(t, err)
		_, _, err = s.DeadLetter(ctx, "replayed", now, store.Breaker{}, 100, []store.Dead{{AttemptRef: c.Items[0].AttemptRef(), Letter: []byte("story"), Failed: true}})
		require.NoError(t, err)
		entries, err := s.ListDLQ(ctx, "replayed", "-", 10)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		replayAt := now.Add(-10 * time.Second)
		n, _, err := s.Replay(ctx, "replayed", []string{entries[0].ID}, replayAt)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		gauges, err := s.GaugesAll(ctx, []string{"busy", "replayed", "never"})
		require.NoError(t, err)
		require.Len(t, gauges, 3)
		byName := map[string]store.QueueGauges{}
		for _, g := range gauges {
			byName[g.Trigger] = g
		}
		busy := byName["busy"]
		require.EqualValues(t, 3, busy.Ready)
		require.EqualValues(t, 1, busy.InFlight)
		require.EqualValues(t, 1, busy.Delayed)
		require.EqualValues(t, 1, busy.DeadLetters)
		require.Equal(t, acc+3, busy.Oldest.UnixMilli(), "the head is the oldest event not yet claimed")
		require.Equal(t, store.BreakerOpen, busy.Breaker, "two failures speaking of the target's health open it")
		require.False(t, busy.BreakerUntil.IsZero())

		rep := byName["replayed"]
		require.EqualValues(t, 1, rep.Ready)
		require.EqualValues(t, 0, rep.DeadLetters)
		require.Equal(t, replayAt.UnixMilli(), rep.Oldest.UnixMilli())

		never := byName["never"]
		require.Equal(t, store.QueueGauges{Trigger: "never", Breaker: store.BreakerClosed}, never)
	})
}

// A queue whose keys hold another type is left out; the others are read.
func TestGaugesAllSkipsForeignKeys(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	s := store.New(b.Client, b.Prefix)
	require.NoError(t, b.Client.Set(ctx, s.Keys().Queue("odd").Ready, "not a list", 0).Err())
	gauges, err := s.GaugesAll(ctx, []string{"odd", "fine"})
	require.NoError(t, err)
	require.Len(t, gauges, 1)
	require.Equal(t, "fine", gauges[0].Trigger)
}
