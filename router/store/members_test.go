package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/store"
)

func TestParseNotice(t *testing.T) {
	cases := map[string]struct {
		in   string
		want store.Notice
		ok   bool
	}{
		"change":                {"c 0a1b 12 orders", store.Notice{Version: store.Version{"0a1b", 12}, Trigger: "orders"}, true},
		"reload everything":     {"c 0a1b 1 ", store.Notice{Version: store.Version{"0a1b", 1}}, true},
		"ack":                   {"a 0a1b 12 host-1", store.Notice{Ack: true, Version: store.Version{"0a1b", 12}, Instance: "host-1"}, true},
		"ack, id with a space":  {"a 0a1b 12 my host", store.Notice{Ack: true, Version: store.Version{"0a1b", 12}, Instance: "my host"}, true},
		"bare name (old)":       {"orders", store.Notice{}, false},
		"ack without id":        {"a 0a1b 12 ", store.Notice{}, false},
		"negative revision":     {"c 0a1b -1 orders", store.Notice{}, false},
		"revision with a sign":  {"c 0a1b +1 orders", store.Notice{}, false},
		"revision not a number": {"c 0a1b x orders", store.Notice{}, false},
		"unknown kind":          {"x 0a1b 1 orders", store.Notice{}, false},
		"name with a space":     {"c 0a1b 1 a b", store.Notice{}, false},
		"too short":             {"c 0a1b 1", store.Notice{}, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := store.ParseNotice(c.in)
			require.Equal(t, c.ok, ok)
			require.Equal(t, c.want, got)
		})
	}
}

func TestVersionCovers(t *testing.T) {
	v := store.Version{"e", 5}
	require.True(t, v.Covers(store.Version{"e", 5}))
	require.True(t, v.Covers(store.Version{"e", 4}))
	require.False(t, v.Covers(store.Version{"e", 6}))
	require.False(t, v.Covers(store.Version{"f", 1}), "another epoch is never covered")
	require.False(t, store.Version{}.Covers(store.Version{}), "nothing covers nothing")
	got, ok := store.ParseVersion(v.String())
	require.True(t, ok)
	require.Equal(t, v, got)
	_, ok = store.ParseVersion("")
	require.False(t, ok)
}

func TestMembersLive(t *testing.T) {
	now := time.UnixMilli(10_000)
	m := store.Members{Now: now, Members: []store.Member{
		{ID: "fresh", Heartbeat: now.Add(-time.Second)},
		{ID: "edge", Heartbeat: now.Add(-3 * time.Second)},
		{ID: "old", Heartbeat: now.Add(-10 * time.Second)},
	}}
	live := m.Live(3 * time.Second)
	require.Len(t, live, 1)
	require.Equal(t, "fresh", live[0].ID)
}

// FuzzParseNotice: a notice that parses prints back to what was parsed, and
// nothing panics.
func FuzzParseNotice(f *testing.F) {
	for _, s := range []string{"c 0a1b 12 orders", "a 0a1b 12 host-1", "c e 0 ", "orders", "a  1 x", "c e 01 x", "c e 9223372036854775808 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := store.ParseNotice(s)
		if !ok {
			return
		}
		kind, rest := "c", n.Trigger
		if n.Ack {
			kind, rest = "a", n.Instance
		}
		if got := strings.Join([]string{kind, n.Version.String(), rest}, " "); got != s {
			t.Fatalf("store.ParseNotice(%q) = %+v, which prints as %q", s, n, got)
		}
	})
}

// The epoch marks the store's lifetime: Restore founds one only when none
// exists (once, however many instances call it), writing the given triggers
// where none of that name is stored; changes carry the version they made,
// announce it on the config channel and return the registry.
func TestEpochRestoreAndRegistry(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, b.Prefix)
		keys := s.Keys()
		sub := b.Client.Subscribe(ctx, keys.ConfigChannel())
		defer sub.Close()
		_, err := sub.Receive(ctx)
		require.NoError(t, err)
		msgs := sub.Channel()
		next := func() string {
			select {
			case m := <-msgs:
				return m.Payload
			case <-time.After(5 * time.Second):
				t.Fatal("no notice")
				return ""
			}
		}

		e1, founded, _, err := s.Restore(ctx, nil)
		require.NoError(t, err)
		require.True(t, founded)
		require.Equal(t, "c "+e1+" 1 ", next(), "founding an epoch tells instances to re-read everything")
		_, err = s.Heartbeat(ctx, "x", store.Version{Epoch: e1, Rev: 1}, time.Minute, false)
		require.NoError(t, err)
		res, err := s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "a"}, store.PutCreate, 0)
		require.NoError(t, err)
		require.Equal(t, store.Version{Epoch: e1, Rev: 2}, res.Change.Version)
		require.Equal(t, "c "+e1+" 2 a", next())
		require.Len(t, res.Change.Members.Members, 1)
		require.Equal(t, "x", res.Change.Members.Members[0].ID)
		require.Equal(t, store.Version{Epoch: e1, Rev: 1}, res.Change.Members.Members[0].Served)
		require.Len(t, res.Change.Members.Live(time.Minute), 1)

		// Unchanged: nothing written, the current version returned.
		res, err = s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "a"}, store.PutApply, 0)
		require.NoError(t, err)
		require.False(t, res.Changed)
		require.Equal(t, store.Version{Epoch: e1, Rev: 2}, res.Change.Version)

		again, founded, _, err := s.Restore(ctx, []*switchyardv1.Trigger{{Name: "a", Description: "other"}, {Name: "b"}})
		require.NoError(t, err)
		require.False(t, founded)
		require.Equal(t, e1, again)
		list, _, err := s.ListTriggers(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1, "an epoch in place: nothing restored")

		// The store loses everything; the first restore founds a new
		// epoch with its triggers, later ones find it.
		testenv.DeletePrefix(b.Client, b.Prefix)
		ver, err := s.CurrentVersion(ctx)
		require.NoError(t, err)
		require.Equal(t, store.Version{}, ver)
		_, _, err = s.DeleteTrigger(ctx, "a", false)
		require.ErrorIs(t, err, store.ErrNoEpoch)
		e2, founded, written, err := s.Restore(ctx, []*switchyardv1.Trigger{{Name: "a", Generation: 3}, {Name: "b", Generation: 1}})
		require.NoError(t, err)
		require.True(t, founded)
		require.EqualValues(t, 2, written)
		require.NotEqual(t, e1, e2)
		require.Equal(t, "c "+e2+" 1 ", next())
		_, founded, _, err = s.Restore(ctx, []*switchyardv1.Trigger{{Name: "c"}})
		require.NoError(t, err)
		require.False(t, founded)
		list, ver, err = s.ListTriggers(ctx)
		require.NoError(t, err)
		require.Equal(t, store.Version{Epoch: e2, Rev: 1}, ver)
		require.Len(t, list, 2)
		require.EqualValues(t, 3, list[0].GetGeneration())

		kept, ch, err := s.DeleteTrigger(ctx, "b", false)
		require.NoError(t, err)
		require.Zero(t, kept)
		require.Equal(t, store.Version{Epoch: e2, Rev: 2}, ch.Version)
		require.Equal(t, "c "+e2+" 2 b", next())
		_, _, err = s.DeleteTrigger(ctx, "b", false)
		require.ErrorIs(t, err, store.ErrNotFound)

		// Heartbeats: an acknowledgement when asked, silent members
		// forgotten, Leave removes.
		m, err := s.Heartbeat(ctx, "x", store.Version{Epoch: e2, Rev: 2}, time.Minute, true)
		require.NoError(t, err)
		require.Equal(t, "a "+e2+" 2 x", next())
		require.Len(t, m.Members, 1)
		now, err := b.Client.Time(ctx).Result()
		require.NoError(t, err)
		require.NoError(t, b.Client.ZAdd(ctx, keys.Members(), redis.Z{Member: "old", Score: float64(now.Add(-time.Hour).UnixMilli())}).Err())
		m, err = s.Heartbeat(ctx, "y", store.Version{}, time.Minute, true)
		require.NoError(t, err)
		ids := []string{}
		for _, x := range m.Members {
			ids = append(ids, x.ID)
		}
		require.ElementsMatch(t, []string{"x", "y"}, ids, "a member silent for longer than forgetAfter is removed")
		require.NoError(t, s.Leave(ctx, "x"))
		_, reg, err := s.SyncPoint(ctx)
		require.NoError(t, err)
		require.Len(t, reg.Members, 1)
		require.Equal(t, "y", reg.Members[0].ID)
		require.Equal(t, store.Version{}, reg.Members[0].Served)
	})
}
