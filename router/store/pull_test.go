package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

func TestReleaseGivesTheSameAttemptNumberAgainAtTheHead(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		var items []store.Item
		for i := range 4 {
			items = append(items, store.Item{ID: fmt.Sprintf("%d-0", i+1), Event: []byte("e")})
		}
		_, err := s.Enqueue(ctx, map[string][]store.Item{"p": items})
		require.NoError(t, err)

		c, err := s.Claim(ctx, "p", now, 2, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, c.Items, 2)
		// 1-0 fails once: attempt 2 is then released.
		_, err = s.ScheduleRetries(ctx, "p", now, store.Breaker{}, []store.Retry{{AttemptRef: c.Items[0].AttemptRef(), Due: now}})
		require.NoError(t, err)
		c2, err := s.Claim(ctx, "p", now, 1, 10, time.Minute)
		require.NoError(t, err)
		require.Equal(t, "1-0", c2.Items[0].ID)
		require.Equal(t, 2, c2.Items[0].Attempt)

		n, err := s.Release(ctx, "p", []store.AttemptRef{
			{ID: "1-0", Attempt: 2}, {ID: "2-0", Attempt: 1},
			{ID: "1-0", Attempt: 2}, // a second time: no longer current
			{ID: "3-0", Attempt: 1}, // never claimed
		})
		require.NoError(t, err)
		require.EqualValues(t, 2, n)

		qs, err := s.Stats(ctx, "p")
		require.NoError(t, err)
		require.EqualValues(t, 0, qs.InFlight)
		require.EqualValues(t, 4, qs.Ready)
		require.Equal(t, "1-0", qs.OldestReady, "released events go back to the head, in order")
		require.Equal(t, "2", qs.Counters["released"])

		c3, err := s.Claim(ctx, "p", now, 4, 10, time.Minute)
		require.NoError(t, err)
		got := map[string]int{}
		var order []string
		for _, it := range c3.Items {
			got[it.ID] = it.Attempt
			order = append(order, it.ID)
		}
		require.Equal(t, []string{"1-0", "2-0", "3-0", "4-0"}, order)
		require.Equal(t, map[string]int{"1-0": 2, "2-0": 1, "3-0": 1, "4-0": 1}, got, "a released attempt's number is given again")
	})
}

func TestExtendLeasesOnlyForTheCurrentAttempt(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		_, err := s.Enqueue(ctx, map[string][]store.Item{"p": {{ID: "1-0", Event: []byte("e")}, {ID: "2-0", Event: []byte("e")}}})
		require.NoError(t, err)
		c, err := s.Claim(ctx, "p", now, 2, 10, time.Second)
		require.NoError(t, err)
		require.Len(t, c.Items, 2)
		_, _, err = s.Ack(ctx, "p", []store.AttemptRef{c.Items[1].AttemptRef()})
		require.NoError(t, err)

		until := now.Add(time.Hour)
		ok, err := s.ExtendLeases(ctx, "p", []store.Extension{
			{AttemptRef: store.AttemptRef{ID: "1-0", Attempt: 1}, Until: until},
			{AttemptRef: store.AttemptRef{ID: "1-0", Attempt: 2}, Until: until}, // not the current attempt
			{AttemptRef: store.AttemptRef{ID: "2-0", Attempt: 1}, Until: until}, // acknowledged
		})
		require.NoError(t, err)
		require.Equal(t, []bool{true, false, false}, ok)

		// Past the first lease, the extended one has not expired: a claim
		// hands out nothing.
		c2, err := s.Claim(ctx, "p", now.Add(2*time.Second), 5, 10, time.Second)
		require.NoError(t, err)
		require.Empty(t, c2.Items)
		require.Equal(t, until.UnixMilli(), c2.NextLease.UnixMilli())
	})
}

func TestConsumerRegistryCountsLiveEntries(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		now := time.Now()
		require.NoError(t, s.RenewConsumers(ctx, "p", []string{"a", "b"}, now, now.Add(10*time.Second)))
		require.NoError(t, s.RenewConsumers(ctx, "p", []string{"old"}, now.Add(-time.Minute), now.Add(-time.Second)))
		n, err := s.CountConsumers(ctx, "p", now)
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "an entry past its expiry is not counted")
		require.NoError(t, s.RemoveConsumer(ctx, "p", "a"))
		n, err = s.CountConsumers(ctx, "p", now)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		n, err = s.CountConsumers(ctx, "p", now.Add(11*time.Second))
		require.NoError(t, err)
		require.EqualValues(t, 0, n)
		ttl, err := b.Client.PTTL(ctx, s.Keys().Consumers("p")).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0), "the registry expires once nobody renews it")
	})
}
