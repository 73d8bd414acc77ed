package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// archiveWorkout runs every archive and replay operation (the slot check's
// workout calls it).
func archiveWorkout(t *testing.T, s *Store) {
	ctx := t.Context()
	now := time.Now()
	require.NoError(t, s.ArchiveAppend(ctx, [][]byte{[]byte("a"), []byte("b")}, 10))
	_, err := s.ArchiveRange(ctx, "-", "+", 10)
	require.NoError(t, err)
	_, err = s.ArchiveRecentBefore(ctx, "+", 10)
	require.NoError(t, err)
	_, err = s.ArchiveInfo(ctx)
	require.NoError(t, err)
	_, err = s.ArchiveTrim(ctx, now.Add(-time.Hour))
	require.NoError(t, err)
	_, err = s.ArchiveTrimLen(ctx, 100)
	require.NoError(t, err)
	require.NoError(t, s.CreateReplay(ctx, "rworkout", []byte("spec"), 2, now, 10))
	ok, err := s.LeaseReplay(ctx, "rworkout", "me", now, time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.CheckpointReplay(ctx, "rworkout", "me", ReplayProgress{Cursor: "1-0", Scanned: 1}, now, time.Second))
	require.NoError(t, s.ReleaseReplay(ctx, "rworkout", "me"))
	_, err = s.CancelReplay(ctx, "rworkout", now)
	require.NoError(t, err)
	_, err = s.ListReplays(ctx)
	require.NoError(t, err)
}

// The archive keeps entries in acceptance order, read forwards from an
// inclusive start and backwards page by page; a size bound trims it.
func TestArchiveStream(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		s := New(b.Client, b.Prefix)
		ctx := t.Context()
		for i := range 5 {
			require.NoError(t, s.ArchiveAppend(ctx, [][]byte{{byte('a' + i)}}, 0))
		}
		all, err := s.ArchiveRange(ctx, "-", "+", 100)
		require.NoError(t, err)
		require.Len(t, all, 5)
		for i, e := range all {
			require.Equal(t, []byte{byte('a' + i)}, e.Event)
			require.WithinDuration(t, time.Now(), e.Time(), time.Minute)
		}
		rest, err := s.ArchiveRange(ctx, dlq.NextID(all[1].ID), "+", 100)
		require.NoError(t, err)
		require.Len(t, rest, 3, "after the second")
		prev, ok := PrevID(all[3].ID)
		require.True(t, ok)
		back, err := s.ArchiveRecentBefore(ctx, prev, 2)
		require.NoError(t, err)
		require.Equal(t, []string{all[2].ID, all[1].ID}, []string{back[0].ID, back[1].ID}, "newest first, before the fourth")
		info, err := s.ArchiveInfo(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 5, info.Entries)
		require.Equal(t, all[0].Time(), info.Oldest)
		require.Equal(t, all[4].Time(), info.Newest)
		_, err = s.ArchiveTrimLen(ctx, 0)
		require.NoError(t, err)
		_, err = s.ArchiveTrim(ctx, time.Now().Add(time.Hour))
		require.NoError(t, err)
	})
}

func TestPrevID(t *testing.T) {
	for in, want := range map[string]string{"5-3": "5-2", "5-0": "4-18446744073709551615", "1-1": "1-0"} {
		got, ok := PrevID(in)
		require.True(t, ok, in)
		require.Equal(t, want, got)
		if in != "5-0" { // NextID does not carry into the milliseconds
			require.Equal(t, in, dlq.NextID(got), "NextID undoes PrevID")
		}
	}
	for _, bad := range []string{"0-0", "x", "5-", "-1", ""} {
		_, ok := PrevID(bad)
		require.False(t, ok, bad)
	}
}

// A job's lease goes to one owner at a time, is taken over only once it
// ran out, and its checkpoint moves only for its owner while it runs.
func TestReplayLeaseAndCheckpoint(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		s := New(b.Client, b.Prefix)
		ctx := t.Context()
		now := time.Now()
		require.NoError(t, s.CreateReplay(ctx, "r1", []byte("spec"), 7, now, 10))
		ids, err := s.RunningReplays(ctx, now)
		require.NoError(t, err)
		require.Equal(t, []string{"r1"}, ids)
		ok, err := s.LeaseReplay(ctx, "r1", "a", now, time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.LeaseReplay(ctx, "r1", "b", now.Add(500*time.Millisecond), time.Second)
		require.NoError(t, err)
		require.False(t, ok, "held by a")
		ids, err = s.RunningReplays(ctx, now.Add(500*time.Millisecond))
		require.NoError(t, err)
		require.Empty(t, ids, "no free lease")
		require.NoError(t, s.CheckpointReplay(ctx, "r1", "a", ReplayProgress{Cursor: "10-0", Scanned: 3, Matched: 2, Sent: 4}, now, time.Second))
		var lost *ErrLeaseLost
		require.ErrorAs(t, s.CheckpointReplay(ctx, "r1", "b", ReplayProgress{Cursor: "11-0", Scanned: 1}, now, time.Second), &lost)
		require.Equal(t, ReplayRunning, lost.State, "not b's")
		// a's lease runs out: b takes the job over, and a's next checkpoint is refused.
		later := now.Add(2 * time.Second)
		ok, err = s.LeaseReplay(ctx, "r1", "b", later, time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.ErrorAs(t, s.CheckpointReplay(ctx, "r1", "a", ReplayProgress{Cursor: "12-0"}, later, time.Second), &lost)
		job, err := s.GetReplay(ctx, "r1")
		require.NoError(t, err)
		require.Equal(t, "10-0", job.Cursor)
		require.EqualValues(t, 3, job.Scanned)
		require.EqualValues(t, 4, job.Sent)
		require.EqualValues(t, 7, job.Total)
		require.Equal(t, "b", job.Owner)
		// Released, anyone may take it at once.
		require.NoError(t, s.ReleaseReplay(ctx, "r1", "b"))
		ok, err = s.LeaseReplay(ctx, "r1", "c", later, time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		// Cancelled: the owner's checkpoint says so, and no lease is given.
		st, err := s.CancelReplay(ctx, "r1", later)
		require.NoError(t, err)
		require.Equal(t, ReplayRunning, st)
		require.ErrorAs(t, s.CheckpointReplay(ctx, "r1", "c", ReplayProgress{}, later, time.Second), &lost)
		require.Equal(t, ReplayCancelled, lost.State)
		ok, err = s.LeaseReplay(ctx, "r1", "c", later, time.Second)
		require.NoError(t, err)
		require.False(t, ok)
		_, err = s.GetReplay(ctx, "missing")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.CancelReplay(ctx, "missing", later)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

// Creating a job beyond the bound deletes the oldest finished ones, never
// a running one.
func TestReplaysBounded(t *testing.T) {
	b := testenv.Real(t)
	s := New(b.Client, b.Prefix)
	ctx := t.Context()
	now := time.Now()
	for i := range 5 {
		id := string(rune('a' + i))
		require.NoError(t, s.CreateReplay(ctx, id, []byte("x"), 0, now.Add(time.Duration(i)*time.Millisecond), 3))
		if i != 1 {
			_, err := s.CancelReplay(ctx, id, now)
			require.NoError(t, err)
		}
	}
	jobs, err := s.ListReplays(ctx)
	require.NoError(t, err)
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	require.Equal(t, []string{"e", "d", "c", "b"}, ids, "the running b stays; the finished a went")
}
