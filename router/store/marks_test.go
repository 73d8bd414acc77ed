package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

func TestMarks(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		m := s.Marks("hooks")
		cur, set, err := m.Mark(ctx, "k", "first", time.Minute)
		require.NoError(t, err)
		require.True(t, set)
		require.Equal(t, "first", cur)
		// A second Mark, from this or another instance, sees the first value.
		cur, set, err = s.Marks("hooks").Mark(ctx, "k", "second", time.Minute)
		require.NoError(t, err)
		require.False(t, set)
		require.Equal(t, "first", cur)
		// Another source's marks are separate.
		_, set, err = s.Marks("other").Mark(ctx, "k", "x", time.Minute)
		require.NoError(t, err)
		require.True(t, set)
		// Put replaces the value and its expiry; Drop frees the key.
		require.NoError(t, m.Put(ctx, "k", "done", time.Hour))
		cur, set, err = m.Mark(ctx, "k", "third", time.Minute)
		require.NoError(t, err)
		require.False(t, set)
		require.Equal(t, "done", cur)
		ttl, err := b.Client.PTTL(ctx, b.Prefix+":{src:hooks}:m:k").Result()
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute)
		require.NoError(t, m.Drop(ctx, "k"))
		require.NoError(t, m.Drop(ctx, "k"))
		_, set, err = m.Mark(ctx, "k", "fourth", time.Minute)
		require.NoError(t, err)
		require.True(t, set)

		// Of many concurrent Marks of one key, exactly one sets it and every
		// other one reads its value.
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners, seen := 0, map[string]int{}
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := string(rune('a' + i%26))
				cur, set, err := s.Marks("race").Mark(ctx, "k", v, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if set {
					winners++
				}
				seen[cur]++
			}()
		}
		wg.Wait()
		require.Equal(t, 1, winners)
		require.Len(t, seen, 1)
	})
}

func TestMarksExpire(t *testing.T) {
	b := testenv.Embedded(t)
	ctx := context.Background()
	m := store.New(b.Client, b.Prefix).Marks("hooks")
	_, set, err := m.Mark(ctx, "k", "v", time.Second)
	require.NoError(t, err)
	require.True(t, set)
	b.Mini.FastForward(2 * time.Second)
	_, set, err = m.Mark(ctx, "k", "w", time.Second)
	require.NoError(t, err)
	require.True(t, set, "an expired mark is absent")
}
