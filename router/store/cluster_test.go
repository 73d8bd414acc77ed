package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// TestSlot: Slot agrees with the cluster's own CLUSTER KEYSLOT, hash tags
// included.
func TestSlot(t *testing.T) {
	b := testenv.Cluster(t)
	k := NewKeys(b.Prefix)
	keys := []string{"", "foo", "{", "{}", "{}x", "a{b}c", "a{b", "x{}{y}", "{{a}}", k.Log(), k.Triggers(), k.Queue("orders").Ready, k.Queue("ü-ñ").DLQ}
	for i := range 50 {
		keys = append(keys, "key:"+strconv.Itoa(i))
	}
	for _, key := range keys {
		want, err := b.Client.ClusterKeySlot(t.Context(), key).Result()
		require.NoError(t, err)
		require.EqualValues(t, want, Slot(key), "slot of %q", key)
	}
}

// slotChecker is a client hook that records every script call and checks
// that the keys of each script, and of each MULTI/EXEC, are in one hash
// slot: what Redis Cluster requires of an atomic step.
type slotChecker struct {
	mu      sync.Mutex
	scripts map[string]int // sha → calls
	errs    []string
}

func (h *slotChecker) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotChecker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check([]redis.Cmder{cmd}, false)
		return next(ctx, cmd)
	}
}

func (h *slotChecker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		tx := len(cmds) > 0 && cmds[0].Name() == "multi"
		h.check(cmds, tx)
		return next(ctx, cmds)
	}
}

// keysOf returns the keys of the commands the store sends.
func keysOf(cmd redis.Cmder) []string {
	args := cmd.Args()
	str := func(i int) string { return fmt.Sprint(args[i]) }
	switch cmd.Name() {
	case "evalsha", "eval":
		n, _ := strconv.Atoi(str(2))
		out := make([]string, n)
		for i := range n {
			out[i] = str(3 + i)
		}
		return out
	case "multi", "exec", "ping", "time", "publish", "script", "pubsub", "subscribe", "scan", "wait", "cluster":
		return nil
	case "mget", "del":
		out := make([]string, 0, len(args)-1)
		for i := 1; i < len(args); i++ {
			out = append(out, str(i))
		}
		return out
	case "xreadgroup":
		for i, a := range args {
			if strings.EqualFold(fmt.Sprint(a), "streams") {
				return []string{str(i + 1)}
			}
		}
		return nil
	case "xgroup", "xautoclaim":
		return []string{str(2)}
	}
	if len(args) < 2 {
		return nil
	}
	return []string{str(1)}
}

func (h *slotChecker) check(cmds []redis.Cmder, tx bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	txSlot := -1
	for _, cmd := range cmds {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			h.scripts[fmt.Sprint(cmd.Args()[1])]++
		}
		for _, k := range keysOf(cmd) {
			sl := Slot(k)
			if tx {
				if txSlot >= 0 && sl != txSlot {
					h.errs = append(h.errs, fmt.Sprintf("transaction spans slots %d and %d (%v)", txSlot, sl, cmd.Args()))
				}
				txSlot = sl
			}
		}
		if ks := keysOf(cmd); len(ks) > 1 {
			for _, k := range ks[1:] {
				if Slot(k) != Slot(ks[0]) {
					h.errs = append(h.errs, fmt.Sprintf("%s spans slots: %v", cmd.Name(), ks))
				}
			}
		}
	}
}

// TestScriptKeysInOneSlot runs every script of the store, and every
// transaction, through a hook that checks their keys hash to one slot; the
// same workload then runs on the real cluster, which refuses a step that
// spans slots (CROSSSLOT).
func TestScriptKeysInOneSlot(t *testing.T) {
	for _, name := range []string{"embedded", "cluster"} {
		t.Run(name, func(t *testing.T) {
			var b testenv.Backend
			if name == "embedded" {
				b = testenv.Embedded(t)
			} else {
				b = testenv.Cluster(t)
			}
			h := &slotChecker{scripts: map[string]int{}}
			b.Client.AddHook(h)
			s := New(b.Client, b.Prefix)
			workout(t, s)
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Empty(t, h.errs)
			for _, sc := range allScripts {
				require.NotZero(t, h.scripts[sc.Hash()], "script %s was not run by the workout", sc.Hash())
			}
			for _, sc := range oomScripts { // in the variant this server runs
				require.NotZero(t, h.scripts[s.oom(sc).Hash()], "script %s was not run by the workout", s.oom(sc).Hash())
			}
		})
	}
}

// workout calls every store operation that runs a script or a transaction.
func workout(t *testing.T, s *Store) {
	ctx := t.Context()
	now := time.Now()
	require.NoError(t, s.LoadScripts(ctx))
	_, _, _, err := s.Restore(ctx, nil)
	require.NoError(t, err)
	_, err = s.Heartbeat(ctx, "i1", Version{}, time.Minute, true)
	require.NoError(t, err)
	_, _, err = s.SyncPoint(ctx)
	require.NoError(t, err)
	_, err = s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "a"}, PutCreate, 0)
	require.NoError(t, err)
	_, err = s.PutTrigger(ctx, &switchyardv1.Trigger{Name: "a"}, PutApply, 0) // unchanged: a sync point
	require.NoError(t, err)
	_, _, err = s.ListTriggers(ctx)
	require.NoError(t, err)
	_, _, err = s.GetTriggersAt(ctx, []string{"a"})
	require.NoError(t, err)
	require.NoError(t, s.Leave(ctx, "i1"))

	require.NoError(t, s.EnsureLogGroup(ctx))
	require.NoError(t, s.AppendLog(ctx, []LogRecord{{Event: []byte("e"), Triggers: []string{"a", "b"}}}))
	recs, err := s.ReadLog(ctx, "c1", 10, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	_, err = s.Enqueue(ctx, map[string][]Item{"a": {{ID: recs[0].ID, Event: recs[0].Event}}, "b": {{ID: recs[0].ID, Event: recs[0].Event}}})
	require.NoError(t, err)
	require.NoError(t, s.AckLog(ctx, recs))
	// Triggers with a dedup window: the same in its variant of each path.
	dd := func(id string) []Item {
		return []Item{{ID: id, Event: []byte(id), DedupKey: DedupKey("/w", id), DedupWindow: time.Minute}}
	}
	_, err = s.Enqueue(ctx, map[string][]Item{"a": dd("d-1"), "b": dd("d-1")})
	require.NoError(t, err)
	_, err = s.Add(ctx, map[string][]Item{"a": dd("d-2")})
	require.NoError(t, err)
	_, err = s.EnqueueWhenFull(ctx, 100, map[string][]Item{"b": dd("d-3")})
	require.NoError(t, err)

	_, err = s.Add(ctx, map[string][]Item{"a": {{ID: "1-x.1", Event: []byte("1")}, {ID: "1-x.2", Event: []byte("2")}, {ID: "1-x.3", Event: []byte("3")}, {ID: "1-x.4", Event: []byte("4")}}})
	require.NoError(t, err)
	_, claimed, claimErr, err := s.AddAndClaim(ctx, map[string][]Item{"b": {{ID: "1-x.5", Event: []byte("5")}}}, now,
		map[string]ClaimRequest{"b": {Want: 1, Limit: 10, Lease: time.Minute}})
	require.NoError(t, errors.Join(err, claimErr))
	require.NotEmpty(t, claimed["b"].Items)
	// A body gone while its id waits: the claim releases it (orphanScript).
	require.NoError(t, s.rdb.HDel(ctx, s.keys.Queue("a").Events, "1-x.1").Err())
	res, err := s.Claim(ctx, "a", now, 10, 10, time.Minute)
	require.NoError(t, err)
	require.NotEmpty(t, res.Items)
	refs := make([]AttemptRef, len(res.Items))
	for i, c := range res.Items {
		refs[i] = c.AttemptRef()
	}
	_, _, err = s.Ack(ctx, "a", refs[:1])
	require.NoError(t, err)
	_, _, err = s.AckWithLetters(ctx, "a", 0, []LetteredAck{{AttemptRef: refs[1], Letters: []Letter{{Event: []byte("r"), Letter: []byte("d")}}}})
	require.NoError(t, err)
	_, err = s.ScheduleRetries(ctx, "a", now, Breaker{Threshold: 5, Cooldown: time.Second, MaxCooldown: time.Minute}, []Retry{{AttemptRef: refs[2], Due: now}})
	require.NoError(t, err)
	_, _, _, err = s.AckAndClaim(ctx, "a", nil, now, 10, 10, time.Minute)
	require.NoError(t, err)
	_, _, err = s.DeadLetter(ctx, "b", now, Breaker{}, 0, []Dead{{AttemptRef: claimed["b"].Items[0].AttemptRef(), Letter: []byte("d")}})
	require.NoError(t, err)
	_, err = s.PeekAll(ctx, []string{"a", "b"})
	require.NoError(t, err)
	_, err = s.Stats(ctx, "a")
	require.NoError(t, err)
	dl, err := s.ListDLQ(ctx, "b", "-", 10)
	require.NoError(t, err)
	require.Len(t, dl, 1)
	_, _, err = s.ReplayTo(ctx, "b", "a", []string{dl[0].ID}, now)
	require.NoError(t, err)
	dl, err = s.ListDLQ(ctx, "a", "-", 10)
	require.NoError(t, err)
	require.NotEmpty(t, dl)
	_, _, err = s.Replay(ctx, "a", []string{dl[0].ID}, now)
	require.NoError(t, err)
	_, err = s.TrimDLQ(ctx, "a", now.Add(-time.Hour))
	require.NoError(t, err)
	_, err = s.CapDLQ(ctx, "a", 1)
	require.NoError(t, err)
	_, err = s.EnqueueWhenFull(ctx, 100, map[string][]Item{"b": {{ID: "9-0", Event: []byte("9")}, {ID: "9-1", Event: []byte("9"), Due: now.Add(time.Hour)}}})
	require.NoError(t, err)
	// Delayed events (deliverafter), fanned out and queued directly, and
	// a publish made once per sequence number (schedule ticks).
	_, err = s.Enqueue(ctx, map[string][]Item{"b": {{ID: "9-2", Event: []byte("9"), Due: now.Add(time.Hour)}}})
	require.NoError(t, err)
	_, err = s.Add(ctx, map[string][]Item{"b": {{ID: "9-x.3", Event: []byte("9"), Due: now.Add(time.Hour)}, {ID: "9-x.4", Event: []byte("9")}}})
	require.NoError(t, err)
	_, err = s.Waiting(ctx, "b", now)
	require.NoError(t, err)
	_, err = s.AppendLogOnce(ctx, "src", 1, []LogRecord{{Event: []byte("e"), Triggers: []string{"b"}, Due: now.Add(time.Hour)}})
	require.NoError(t, err)
	_, _, err = s.LastOnce(ctx, "src")
	require.NoError(t, err)
	// Lanes (an ordered trigger): the fan-out's, the direct path's and the
	// full store's enqueue, stats, skip.
	lane := func(id string) Item { return Item{ID: id, Event: []byte(id), Lane: LaneName("k"), BlockOnDead: true} }
	_, err = s.Enqueue(ctx, map[string][]Item{"a": {lane("l1")}})
	require.NoError(t, err)
	_, err = s.Add(ctx, map[string][]Item{"a": {lane("l2")}})
	require.NoError(t, err)
	_, err = s.EnqueueWhenFull(ctx, 100, map[string][]Item{"a": {lane("l3")}})
	require.NoError(t, err)
	_, err = s.LaneStats(ctx, "a", 10)
	require.NoError(t, err)
	_, err = s.SkipLane(ctx, "a", LaneName("k"))
	require.NoError(t, err)
	_, err = s.PurgeDLQAll(ctx, "a")
	require.NoError(t, err)
	_, _, err = s.DeleteTrigger(ctx, "a", true)
	require.NoError(t, err)
	archiveWorkout(t, s)
	left, err := s.rdb.Exists(ctx, s.keys.Queue("a").laneKeys()...).Result()
	require.NoError(t, err)
	require.Zero(t, left, "a purge deletes the lanes")
}

// triggersOnEveryMaster returns trigger names whose queues are spread over
// the cluster's three masters' slot ranges (0-5460, 5461-10922, 10923-16383).
func triggersOnEveryMaster(k Keys) []string {
	var out []string
	seen := map[int]bool{}
	for i := 0; len(out) < 3; i++ {
		name := "t" + strconv.Itoa(i)
		r := Slot(k.Queue(name).Ready) * 3 / 16384
		if !seen[r] {
			seen[r] = true
			out = append(out, name)
		}
	}
	return out
}

// TestAcrossSlots: on the cluster, one commit for triggers on every master
// queues each one's events; dead-letter streams are listed from every
// master; subscribers are counted on every node.
func TestAcrossSlots(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		ctx := t.Context()
		s := New(b.Client, b.Prefix)
		require.NoError(t, s.LoadScripts(ctx))
		names := triggersOnEveryMaster(s.keys)
		batches := map[string][]Item{}
		for i, n := range names {
			batches[n] = []Item{{ID: "1-x." + strconv.Itoa(i), Event: []byte("e")}}
		}
		held, err := s.Add(ctx, batches)
		require.NoError(t, err)
		for _, n := range names {
			require.EqualValues(t, 1, held[n], n)
			res, err := s.Claim(ctx, n, time.Now(), 1, 1, time.Minute)
			require.NoError(t, err)
			require.Len(t, res.Items, 1)
			_, _, err = s.DeadLetter(ctx, n, time.Now(), Breaker{}, 0, []Dead{{AttemptRef: res.Items[0].AttemptRef(), Letter: []byte("d")}})
			require.NoError(t, err)
		}
		got, err := s.DLQTriggers(ctx)
		require.NoError(t, err)
		require.ElementsMatch(t, names, got)

		ch := s.keys.WakeChannel()
		subs := make([]*redis.PubSub, 2)
		for i := range subs {
			subs[i] = b.Client.Subscribe(ctx, ch)
			_, err := subs[i].Receive(ctx)
			require.NoError(t, err)
			defer subs[i].Close()
		}
		n, err := s.Subscribers(ctx, ch)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
	})
}

// TestDurability: with replicas to wait for, a write returns once they
// have it; when fewer confirm in time, a *ReplicationError says so and the
// write stands. The real Redis has no replica; the cluster's masters have
// one each.
func TestDurability(t *testing.T) {
	for _, name := range []string{"redis", "cluster"} {
		t.Run(name, func(t *testing.T) {
			var b testenv.Backend
			if name == "redis" {
				b = testenv.Real(t)
			} else {
				b = testenv.Cluster(t)
			}
			ctx := t.Context()
			s := New(b.Client, b.Prefix)
			require.NoError(t, s.LoadScripts(ctx))
			require.NoError(t, s.EnsureLogGroup(ctx))
			names := triggersOnEveryMaster(s.keys)
			write := func(round int) (map[string]int64, error, error) {
				batches := map[string][]Item{}
				for i, n := range names {
					batches[n] = []Item{{ID: fmt.Sprintf("%d-x.%d", round, i), Event: []byte("e")}}
				}
				held, _, _, err := s.AddAndClaim(ctx, batches, time.Now(), map[string]ClaimRequest{names[0]: {Want: 1, Limit: 1, Lease: time.Minute}})
				logErr := s.AppendLog(ctx, []LogRecord{{Event: []byte("e"), Triggers: names}})
				return held, err, logErr
			}
			if name == "cluster" {
				s.SetDurability(Durability{Replicas: 1, Timeout: 5 * time.Second})
				held, err, logErr := write(1)
				require.NoError(t, err)
				require.NoError(t, logErr)
				for _, n := range names {
					require.EqualValues(t, 1, held[n])
				}
				recs, err := s.ReadLog(ctx, "c", 10, 0)
				require.NoError(t, err)
				require.Len(t, recs, 1)
				items := map[string][]Item{}
				for _, n := range names {
					items[n] = []Item{{ID: recs[0].ID, Event: recs[0].Event}}
				}
				held, err = s.Enqueue(ctx, items)
				require.NoError(t, err)
				for _, n := range names {
					require.EqualValues(t, 2, held[n])
				}
			}
			s.SetDurability(Durability{Replicas: 2, Timeout: 50 * time.Millisecond})
			held, err, logErr := write(2)
			var re *ReplicationError
			require.ErrorAs(t, err, &re)
			require.ErrorAs(t, logErr, &re)
			require.Less(t, re.Got, 2)
			for _, n := range names {
				require.NotZero(t, held[n], "the write stands")
			}
			if name == "cluster" {
				var te TriggerErrors
				require.ErrorAs(t, err, &te, "one transaction per slot, each answered")
				require.Len(t, te, 3)
			}
			n, err := s.LogLength(ctx)
			require.NoError(t, err)
			require.EqualValues(t, map[string]int64{"redis": 1, "cluster": 2}[name], n, "the log record stands")
		})
	}
}

// TestDurabilityWhenAClaimFails: a claim that fails inside the
// transaction (the server lost its scripts) does not skip the wait for the
// replicas of the writes before it.
func TestDurabilityWhenAClaimFails(t *testing.T) {
	b := testenv.Cluster(t)
	ctx := t.Context()
	s := New(b.Client, b.Prefix)
	cc := b.Client.(*redis.ClusterClient)
	require.NoError(t, cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() }))
	s.SetDurability(Durability{Replicas: 2, Timeout: 50 * time.Millisecond})
	held, claimed, claimErr, err := s.AddAndClaim(ctx, map[string][]Item{"t": {{ID: "1-x.1", Event: []byte("e")}}}, time.Now(),
		map[string]ClaimRequest{"t": {Want: 1, Limit: 1, Lease: time.Minute}})
	var re *ReplicationError
	require.ErrorAs(t, err, &re, "the wait ran: one replica, two asked")
	require.Equal(t, 1, re.Got)
	require.NoError(t, claimErr, "the claim ran again once the scripts were loaded")
	require.EqualValues(t, 1, held["t"])
	require.Len(t, claimed["t"].Items, 1)
}
