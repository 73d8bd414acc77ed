package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// TestAddAndClaimOneScript covers the direct publish that queues and claims
// in one script (addClaimScript): new events of an idle queue start at
// once, an event queued before goes first, the breaker and the limit hold,
// and a script Redis lost is loaded and run again without leaving a body
// behind or queuing an id twice.
func TestAddAndClaimOneScript(t *testing.T) {
	item := func(id, body string) store.Item { return store.Item{ID: id, Event: []byte(body)} }
	lease := 10 * time.Second
	claimIDs := func(r store.ClaimResult) (ids, bodies []string) {
		for _, it := range r.Items {
			ids, bodies = append(ids, it.ID), append(bodies, string(it.Event))
			require.Equal(t, 1, it.Attempt, it.ID)
			require.False(t, it.Expired, it.ID)
		}
		return ids, bodies
	}
	cases := []struct {
		name    string
		setup   func(t *testing.T, ctx context.Context, s *store.Store, b testenv.Backend)
		publish []store.Item
		req     store.ClaimRequest
		// claimed: ids started by the publish; ready: left waiting,
		// in the order a Claim then hands them out.
		claimed, bodies, ready []string
		breaker                store.BreakerState
	}{
		{
			name:    "idle queue: the new events start, the rest wait",
			publish: []store.Item{item("1-0", "a"), item("2-0", "b"), item("3-0", "c")},
			req:     store.ClaimRequest{Want: 2, Limit: 8, Lease: lease},
			claimed: []string{"1-0", "2-0"}, bodies: []string{"a", "b"}, ready: []string{"3-0"},
		},
		{
			name: "events waiting: the oldest goes first",
			setup: func(t *testing.T, ctx context.Context, s *store.Store, _ testenv.Backend) {
				_, err := s.Enqueue(ctx, map[string][]store.Item{"t": {item("1-0", "a"), item("2-0", "b")}})
				require.NoError(t, err)
			},
			publish: []store.Item{item("3-0", "c")},
			req:     store.ClaimRequest{Want: 1, Limit: 8, Lease: lease},
			claimed: []string{"1-0"}, bodies: []string{"a"}, ready: []string{"2-0", "3-0"},
		},
		{
			name: "at the limit: nothing starts",
			setup: func(t *testing.T, ctx context.Context, s *store.Store, _ testenv.Backend) {
				_, err := s.Enqueue(ctx, map[string][]store.Item{"t": {item("1-0", "a")}})
				require.NoError(t, err)
				r, err := s.Claim(ctx, "t", time.Now(), 1, 1, lease)
				require.NoError(t, err)
				require.Len(t, r.Items, 1)
			},
			publish: []store.Item{item("2-0", "b")},
			req:     store.ClaimRequest{Want: 1, Limit: 1, Lease: lease},
			ready:   []string{"2-0"},
		},
		{
			name: "breaker open: nothing starts",
			setup: func(t *testing.T, ctx context.Context, s *store.Store, b testenv.Backend) {
				until := time.Now().Add(time.Hour).UnixMilli()
				require.NoError(t, b.Client.HSet(ctx, s.Keys().Queue("t").Stats, "cb_state", "open", "cb_until", until).Err())
			},
			publish: []store.Item{item("1-0", "a")},
			req:     store.ClaimRequest{Want: 4, Limit: 8, Lease: lease},
			ready:   []string{"1-0"}, breaker: store.BreakerOpen,
		},
		{
			name: "scripts lost: loaded and run again",
			setup: func(t *testing.T, ctx context.Context, s *store.Store, b testenv.Backend) {
				require.NoError(t, s.LoadScripts(ctx))
				if cc, ok := b.Client.(*redis.ClusterClient); ok {
					require.NoError(t, cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() }))
					return
				}
				require.NoError(t, b.Client.ScriptFlush(ctx).Err())
			},
			publish: []store.Item{item("1-0", "a"), item("2-0", "b")},
			req:     store.ClaimRequest{Want: 1, Limit: 8, Lease: lease},
			claimed: []string{"1-0"}, bodies: []string{"a"}, ready: []string{"2-0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testenv.All(t, func(t *testing.T, b testenv.Backend) {
				ctx := context.Background()
				s := store.New(b.Client, b.Prefix)
				if tc.setup != nil {
					tc.setup(t, ctx, s, b)
				}
				before, err := s.Stats(ctx, "t")
				require.NoError(t, err)
				held, claimed, claimErr, err := s.AddAndClaim(ctx, map[string][]store.Item{"t": tc.publish}, time.Now(),
					map[string]store.ClaimRequest{"t": tc.req})
				require.NoError(t, err)
				require.NoError(t, claimErr)
				want := before.Ready + before.InFlight + int64(len(tc.publish))
				require.Equal(t, want, held["t"], "held")
				r := claimed["t"]
				ids, bodies := claimIDs(r)
				require.Equal(t, tc.claimed, ids)
				require.Equal(t, tc.bodies, bodies)
				require.EqualValues(t, len(tc.ready), r.Ready)
				breaker := tc.breaker
				if breaker == "" {
					breaker = store.BreakerClosed
				}
				require.Equal(t, breaker, r.Breaker)
				st, err := s.Stats(ctx, "t")
				require.NoError(t, err)
				require.EqualValues(t, len(tc.ready), st.Ready)
				require.Equal(t, want, st.Ready+st.InFlight, "every event stored is waiting or in flight, once")
				if tc.breaker == store.BreakerOpen {
					return
				}
				// What waits comes out in order, each once.
				var rest []string
				for range tc.ready {
					r, err := s.Claim(ctx, "t", time.Now(), 1, 100, lease)
					require.NoError(t, err)
					require.Len(t, r.Items, 1)
					rest = append(rest, r.Items[0].ID)
				}
				require.Equal(t, tc.ready, rest)
			})
		})
	}
}
