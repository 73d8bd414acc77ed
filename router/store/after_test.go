package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// A delayed item is held (it counts in the queue's size) but not claimed
// before its time, whether queued directly or by the fan-out; once due, a
// claim hands it out first. Waiting counts it until then.
func TestDelayedItemsWaitForTheirTime(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := t.Context()
		s := New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		now := time.Now()
		due := now.Add(time.Hour)
		held, err := s.Add(ctx, map[string][]Item{"t": {{ID: "1-a.1", Event: []byte("late"), Due: due}, {ID: "1-a.2", Event: []byte("now")}}})
		require.NoError(t, err)
		require.EqualValues(t, 2, held["t"])
		held, err = s.Enqueue(ctx, map[string][]Item{"t": {{ID: "2-0", Event: []byte("later"), Due: due.Add(time.Minute)}, {ID: "2-1", Event: []byte("now too")}}})
		require.NoError(t, err)
		require.EqualValues(t, 4, held["t"])
		// Queued again (a fan-out overtaken): stored once.
		_, err = s.Enqueue(ctx, map[string][]Item{"t": {{ID: "2-0", Event: []byte("later"), Due: due}}})
		require.NoError(t, err)
		n, err := s.Waiting(ctx, "t", now)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)

		res, err := s.Claim(ctx, "t", now, 10, 10, 3*time.Hour)
		require.NoError(t, err)
		var got []string
		for _, it := range res.Items {
			got = append(got, string(it.Event))
		}
		require.ElementsMatch(t, []string{"now", "now too"}, got)
		require.Equal(t, due.UnixMilli(), res.NextDue.UnixMilli(), "the claim says when to look again")
		qs, err := s.Stats(ctx, "t")
		require.NoError(t, err)
		require.EqualValues(t, 2, qs.Delayed)

		res, err = s.Claim(ctx, "t", due.Add(2*time.Minute), 10, 10, time.Minute)
		require.NoError(t, err)
		got = got[:0]
		for _, it := range res.Items {
			got = append(got, string(it.Event))
			require.Equal(t, 1, it.Attempt, "a first attempt, not a retry")
		}
		require.ElementsMatch(t, []string{"late", "later"}, got)
		n, err = s.Waiting(ctx, "t", due.Add(2*time.Minute))
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

// AppendLogOnce appends for a sequence number greater than the last one
// recorded under its key only, and records it in the same step.
func TestAppendLogOnce(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := t.Context()
		s := New(b.Client, b.Prefix)
		require.NoError(t, s.EnsureLogGroup(ctx))
		_, ok, err := s.LastOnce(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)
		rec := []LogRecord{{Event: []byte("e"), Triggers: []string{"x", "y"}}}
		for _, step := range []struct {
			seq  int64
			want bool
		}{{5, true}, {5, false}, {4, false}, {6, true}} {
			ok, err := s.AppendLogOnce(ctx, "k", step.seq, rec)
			require.NoError(t, err)
			require.Equal(t, step.want, ok, "seq %d", step.seq)
		}
		last, ok, err := s.LastOnce(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		require.EqualValues(t, 6, last)
		n, err := s.LogLength(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		adm, err := s.Admitted(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, adm["x"])
		ok, err = s.AppendLogOnce(ctx, "k", 7, nil) // nothing matched: the tick is still taken
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.AppendLogOnce(ctx, "k", 7, rec)
		require.NoError(t, err)
		require.False(t, ok)
	})
}
