package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// replayInvoker acknowledges every attempt and keeps, per trigger, the ids
// delivered and the replay extension each carried.
type replayInvoker struct {
	mu   sync.Mutex
	seen map[string]map[string][]string // trigger → event id → replay extension per delivery ("" for none)
}

func newReplayInvoker() *replayInvoker {
	return &replayInvoker{seen: map[string]map[string][]string{}}
}

func (v *replayInvoker) Invoke(_ context.Context, a *delivery.Attempt) delivery.Result {
	ev := &pb.CloudEvent{}
	_ = proto.Unmarshal(a.Raw, ev)
	v.mu.Lock()
	if v.seen[a.Trigger] == nil {
		v.seen[a.Trigger] = map[string][]string{}
	}
	v.seen[a.Trigger][ev.GetId()] = append(v.seen[a.Trigger][ev.GetId()], ev.GetAttributes()[ReplayExtension].GetCeString())
	v.mu.Unlock()
	return delivery.Result{Verdict: delivery.Ack, Start: time.Now()}
}

func (v *replayInvoker) Close() error { return nil }

// got returns a copy of what trigger received.
func (v *replayInvoker) got(trigger string) map[string][]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string][]string{}
	for id, xs := range v.seen[trigger] {
		out[id] = append([]string(nil), xs...)
	}
	return out
}

func archiving(cfg ArchiveConfig, inv delivery.Invoker) func(*Config, *delivery.Invoker) {
	return func(c *Config, i *delivery.Invoker) {
		c.Archive = cfg
		if inv != nil {
			*i = inv
		}
	}
}

// archivedIDs returns the ids of the first n events the archive holds, in
// order, each decoded and stamped with a time near now.
func archivedIDs(t *testing.T, r *Router, n int64) []string {
	t.Helper()
	got, err := r.Store().ArchiveRange(t.Context(), "-", "+", n)
	require.NoError(t, err)
	var ids []string
	for _, e := range got {
		ev := &pb.CloudEvent{}
		require.NoError(t, proto.Unmarshal(e.Event, ev))
		ids = append(ids, ev.GetId())
		require.WithinDuration(t, time.Now(), e.Time(), time.Minute)
	}
	return ids
}

func putTrigger(t *testing.T, r *Router, name, typ string) {
	t.Helper()
	s := trigger.Spec{Name: name, Target: trigger.Target{GRPC: "127.0.0.1:1"}}
	if typ != "" {
		s.Filter.Attributes = map[string]string{"type": typ}
	}
	_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(s), store.PutApply, 0)
	require.NoError(t, err)
}

// Every accepted event is archived once, in order (on Redis Cluster too,
// where the archive's slot is apart from the queues' and the log's), whether it was routed
// to one trigger (queued directly), to several (through the ingest log) or
// to none; the archived bytes are the event.
func TestArchiveKeepsEveryAcceptedEventOnce(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, nil))
		putTrigger(t, r, "one", "a")
		putTrigger(t, r, "two", "b")
		putTrigger(t, r, "three", "b")
		var want []string
		publish := func(evs ...*pb.CloudEvent) {
			_, err := r.Publish(t.Context(), evs)
			require.NoError(t, err)
			for _, ev := range evs {
				want = append(want, ev.GetId())
			}
		}
		publish(event("d1", "a"), event("d2", "a"))       // one trigger: direct
		publish(event("l1", "b"))                         // two triggers: the log
		publish(event("u1", "none"), event("u2", "none")) // no trigger
		publish(event("m1", "a"), event("m2", "none"), event("m3", "b"))
		require.Equal(t, want, archivedIDs(t, r, 100))
		info, err := r.ArchiveInfo(t.Context())
		require.NoError(t, err)
		require.EqualValues(t, len(want), info.Entries)
	})
}

// Events published at most once (a schedule's ticks, PublishOnce) are
// archived too, once however many instances fire the same tick, routed or
// not.
func TestArchiveKeepsTicksOnce(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		cfg := archiving(ArchiveConfig{Retention: time.Hour}, nil)
		a := startRouter(t, b.Client, b.Prefix, cfg)
		c := startRouter(t, b.Client, b.Prefix, cfg)
		putTrigger(t, a, "ticks", "tick")
		var want []string
		for seq := int64(1); seq <= 3; seq++ {
			typ := "tick"
			if seq == 2 {
				typ = "none" // routed nowhere: archived all the same
			}
			id := fmt.Sprintf("t%d", seq)
			pa, err := a.PublishOnce(t.Context(), "sched", seq, []*pb.CloudEvent{event(id, typ)})
			require.NoError(t, err)
			pc, err := c.PublishOnce(t.Context(), "sched", seq, []*pb.CloudEvent{event(id, typ)})
			require.NoError(t, err)
			require.True(t, pa != pc, "tick %d published by exactly one instance", seq)
			want = append(want, id)
		}
		require.Equal(t, want, archivedIDs(t, a, 100))
	})
}

// Off, publishing writes nothing to the archive and the archive calls say
// it is off.
func TestArchiveOffWritesNothing(t *testing.T) {
	b := testenv.Real(t)
	r := startRouter(t, b.Client, b.Prefix, nil)
	putTrigger(t, r, "one", "a")
	_, err := r.Publish(t.Context(), []*pb.CloudEvent{event("x", "a"), event("y", "none")})
	require.NoError(t, err)
	n, err := b.Client.Exists(t.Context(), r.Store().Keys().Archive()).Result()
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = r.ArchiveInfo(t.Context())
	require.ErrorIs(t, err, ErrArchiveOff)
	_, err = r.StartReplay(t.Context(), &switchyardv1.ReplaySpec{From: timestamppb.Now(), Destination: &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}})
	require.ErrorIs(t, err, ErrArchiveOff)
}

// A size bound keeps the archive near it: the entry count follows from the
// events' average size (Redis trims whole nodes of 100 entries, the
// embedded store exactly).
func TestArchiveBoundedBySize(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		const maxBytes = 32 << 10
		r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{MaxBytes: maxBytes}, nil))
		data := make([]byte, 200)
		for i := range 40 {
			evs := make([]*pb.CloudEvent, 50)
			for j := range evs {
				evs[j] = event(fmt.Sprintf("e%d-%d", i, j), "none")
				evs[j].Data = &pb.CloudEvent_BinaryData{BinaryData: data}
			}
			_, err := r.Publish(t.Context(), evs)
			require.NoError(t, err)
		}
		size := int64(proto.Size(func() *pb.CloudEvent {
			e := event("e10-10", "none")
			e.Data = &pb.CloudEvent_BinaryData{BinaryData: data}
			return e
		}()))
		bound := maxBytes / (size + archiveEntryOverhead)
		info, err := r.ArchiveInfo(t.Context())
		require.NoError(t, err)
		require.Greater(t, info.Entries, bound/2, "kept about the bound")
		require.LessOrEqual(t, info.Entries, bound+100, "trimmed to the bound (within one node)")
	})
}

// startReplay starts a replay and waits until it ends, returning it.
func runReplay(t *testing.T, r *Router, spec *switchyardv1.ReplaySpec) *switchyardv1.Replay {
	t.Helper()
	job, err := r.StartReplay(t.Context(), spec)
	require.NoError(t, err)
	// A short job may already have ended when StartReplay reads it back.
	require.Contains(t, []string{store.ReplayRunning, store.ReplaySucceeded}, job.GetState(), job.GetError())
	var last *switchyardv1.Replay
	testenv.Eventually(t, 20*time.Second, func() bool {
		last, err = r.GetReplay(t.Context(), job.GetId())
		return err == nil && last.GetState() != store.ReplayRunning
	}, "replay %s ends", job.GetId())
	return last
}

// A trigger created after the events were accepted gets them from the
// archive: those its filter matches, once each, marked as replays; a
// dry run counts the same without sending.
func TestReplayBackfillsANewTrigger(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := newReplayInvoker()
		r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, inv))
		putTrigger(t, r, "live", "a")
		from := time.Now().Add(-time.Second)
		var want []string
		for i := range 30 {
			typ := "a"
			if i%3 == 0 {
				typ = "other"
			} else {
				want = append(want, fmt.Sprintf("e%d", i))
			}
			_, err := r.Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("e%d", i), typ)})
			require.NoError(t, err)
		}
		testenv.Eventually(t, 10*time.Second, func() bool { return len(inv.got("live")) == len(want) }, "live deliveries")
		putTrigger(t, r, "late", "a")

		dry := runReplay(t, r, &switchyardv1.ReplaySpec{From: timestamppb.New(from),
			Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "late"}, DryRun: true})
		require.Equal(t, store.ReplaySucceeded, dry.GetState(), dry.GetError())
		require.EqualValues(t, 30, dry.GetScanned())
		require.EqualValues(t, len(want), dry.GetSent())
		require.Empty(t, inv.got("late"), "a dry run sends nothing")

		job := runReplay(t, r, &switchyardv1.ReplaySpec{From: timestamppb.New(from),
			Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "late"}, Rate: 1000})
		require.Equal(t, store.ReplaySucceeded, job.GetState(), job.GetError())
		require.EqualValues(t, len(want), job.GetMatched())
		require.EqualValues(t, 30, job.GetTotal(), "the window holds the whole archive")
		require.EqualValues(t, 1.0, job.GetProgress())
		testenv.Eventually(t, 10*time.Second, func() bool { return len(inv.got("late")) == len(want) }, "replayed deliveries")
		for id, xs := range inv.got("late") {
			require.Contains(t, want, id)
			require.Equal(t, []string{job.GetId()}, xs, "%s delivered once, marked as a replay", id)
		}
		require.Len(t, inv.got("live"), len(want), "the other trigger got nothing more")
	})
}

// An all-matching replay routes by the current triggers, within the
// creator's trigger scope and the CESQL filter.
func TestReplayAllMatchingWithinScopeAndFilter(t *testing.T) {
	b := testenv.Real(t)
	inv := newReplayInvoker()
	r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, inv))
	from := time.Now().Add(-time.Second)
	for i := range 10 {
		_, err := r.Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("e%d", i), "a")})
		require.NoError(t, err)
	}
	putTrigger(t, r, "shop-a", "a")
	putTrigger(t, r, "shop-b", "")
	putTrigger(t, r, "bank-a", "a")
	job := runReplay(t, r, &switchyardv1.ReplaySpec{From: timestamppb.New(from), Filter: "id IN ('e1', 'e2', 'e3')",
		Destination: &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}, ScopeTriggers: []string{"shop-"}})
	require.Equal(t, store.ReplaySucceeded, job.GetState(), job.GetError())
	require.EqualValues(t, 10, job.GetScanned())
	require.EqualValues(t, 3, job.GetMatched())
	require.EqualValues(t, 6, job.GetSent())
	testenv.Eventually(t, 10*time.Second, func() bool { return len(inv.got("shop-a")) == 3 && len(inv.got("shop-b")) == 3 }, "deliveries")
	require.Empty(t, inv.got("bank-a"), "outside the scope")
}

// Bad replay specs are refused naming the field, and store nothing.
func TestReplaySpecRefused(t *testing.T) {
	b := testenv.Embedded(t)
	r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{MaxBytes: 1 << 20}, nil))
	now := time.Now()
	all := &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}
	for name, tc := range map[string]struct {
		spec  *switchyardv1.ReplaySpec
		field string
	}{
		"no from":        {&switchyardv1.ReplaySpec{Destination: all}, "from"},
		"from after to":  {&switchyardv1.ReplaySpec{From: timestamppb.New(now), To: timestamppb.New(now.Add(-time.Hour)), Destination: all}, "from"},
		"no destination": {&switchyardv1.ReplaySpec{From: timestamppb.New(now.Add(-time.Hour))}, "trigger"},
		"bad filter":     {&switchyardv1.ReplaySpec{From: timestamppb.New(now.Add(-time.Hour)), Filter: "type = ", Destination: all}, "filter"},
		"rate":           {&switchyardv1.ReplaySpec{From: timestamppb.New(now.Add(-time.Hour)), Rate: MaxReplayRate + 1, Destination: all}, "rate"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.StartReplay(t.Context(), tc.spec)
			var re *ReplayError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.field, re.Field)
		})
	}
	_, err := r.StartReplay(t.Context(), &switchyardv1.ReplaySpec{From: timestamppb.New(now.Add(-time.Hour)),
		Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "nope"}})
	require.ErrorIs(t, err, store.ErrNotFound)
	jobs, err := r.ListReplays(t.Context())
	require.NoError(t, err)
	require.Empty(t, jobs)
}

// A job whose instance died (its lease ran out) is taken over and resumes
// after its checkpoint: the events before it are not sent again, those
// after it are.
func TestReplayResumesFromItsCheckpoint(t *testing.T) {
	b := testenv.Real(t)
	inv := newReplayInvoker()
	r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, inv))
	from := time.Now().Add(-time.Second)
	for i := range 20 {
		_, err := r.Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("e%02d", i), "a")})
		require.NoError(t, err)
	}
	putTrigger(t, r, "late", "")
	entries, err := r.Store().ArchiveRange(t.Context(), "-", "+", 100)
	require.NoError(t, err)
	require.Len(t, entries, 20)
	// A job another instance ran up to the 8th event before it died.
	spec, err := proto.Marshal(&switchyardv1.ReplaySpec{From: timestamppb.New(from), To: timestamppb.New(time.Now().Add(time.Second)),
		Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "late"}, Rate: 1000})
	require.NoError(t, err)
	const id = "rdead0000000000001"
	require.NoError(t, r.Store().CreateReplay(t.Context(), id, spec, 0, time.Now(), keepReplays))
	ok, err := r.Store().LeaseReplay(t.Context(), id, "dead-instance", time.Now(), 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, r.Store().CheckpointReplay(t.Context(), id, "dead-instance",
		store.ReplayProgress{Cursor: entries[7].ID, Scanned: 8, Matched: 8, Sent: 8}, time.Now(), 300*time.Millisecond))
	var job *switchyardv1.Replay
	testenv.Eventually(t, 20*time.Second, func() bool {
		job, err = r.GetReplay(t.Context(), id)
		return err == nil && job.GetState() == store.ReplaySucceeded
	}, "the job is taken over and finishes")
	require.EqualValues(t, 20, job.GetScanned())
	require.EqualValues(t, 20, job.GetSent())
	testenv.Eventually(t, 10*time.Second, func() bool { return len(inv.got("late")) == 12 }, "the rest delivered")
	got := inv.got("late")
	for i := range 20 {
		_, ok := got[fmt.Sprintf("e%02d", i)]
		require.Equal(t, i >= 8, ok, "e%02d", i)
	}
}

// A cancelled job stops at its next batch and stays cancelled.
func TestReplayCancel(t *testing.T) {
	b := testenv.Real(t)
	inv := newReplayInvoker()
	r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, inv))
	from := time.Now().Add(-time.Second)
	evs := make([]*pb.CloudEvent, 500)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("e%d", i), "a")
	}
	_, err := r.Publish(t.Context(), evs)
	require.NoError(t, err)
	putTrigger(t, r, "late", "")
	job, err := r.StartReplay(t.Context(), &switchyardv1.ReplaySpec{From: timestamppb.New(from),
		Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "late"}, Rate: 50})
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(inv.got("late")) > 0 }, "the replay started")
	c, err := r.CancelReplay(t.Context(), job.GetId())
	require.NoError(t, err)
	require.Equal(t, store.ReplayCancelled, c.GetState())
	sent := c.GetSent()
	testenv.Eventually(t, 10*time.Second, func() bool {
		j, err := r.GetReplay(t.Context(), job.GetId())
		return err == nil && j.GetSent() == sent
	}, "no checkpoint after the cancel")
	require.Less(t, sent, int64(len(evs)))
	_, err = r.GetReplay(t.Context(), "rmissing")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// BenchmarkPublishArchive publishes batches of 10 events routed to one
// trigger on the real Redis with the archive off and on: off must cost
// what it cost before the archive existed; on adds one transaction run
// beside the queue's.
func BenchmarkPublishArchive(b *testing.B) {
	for _, mode := range []struct {
		name string
		cfg  ArchiveConfig
	}{{"off", ArchiveConfig{}}, {"on", ArchiveConfig{Retention: time.Hour}}} {
		b.Run(mode.name, func(b *testing.B) {
			be := testenv.Real(b)
			cfg := Config{Prefix: be.Prefix, Logger: slog.New(slog.DiscardHandler), Archive: mode.cfg, InstanceID: fmt.Sprintf("bench%d", routerSeq.Add(1))}
			r, err := New(cfg, be.Client, &countingInvoker{seen: map[string]int{}})
			require.NoError(b, err)
			require.NoError(b, r.Start(b.Context()))
			b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
			_, _, err = r.PutTrigger(b.Context(), trigger.ToProto(trigger.Spec{Name: "bench", Target: trigger.Target{GRPC: "127.0.0.1:1"},
				Filter: filter.Spec{Attributes: map[string]string{"type": "bench"}}}), store.PutApply, 0)
			require.NoError(b, err)
			evs := make([]*pb.CloudEvent, 10)
			for i := range evs {
				evs[i] = event(fmt.Sprintf("b%d", i), "bench")
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := r.Publish(context.Background(), evs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// With the archive on, /metrics shows what it holds and its bounds, the
// replays running with their progress, and what this instance's replays
// read and queued; off, none of it.
func TestArchiveMetrics(t *testing.T) {
	b := testenv.Real(t)
	inv := newReplayInvoker()
	r := startRouter(t, b.Client, b.Prefix, func(c *Config, i *delivery.Invoker) {
		archiving(ArchiveConfig{Retention: time.Hour, MaxBytes: 1 << 20}, inv)(c, i)
		c.Metrics.StoreReadTTL = -1
	})
	reg := r.Registry()
	none := map[string]string{}
	gauge := func(name string) float64 {
		v, ok := value(t, reg, name, none)
		require.True(t, ok, name)
		return v
	}
	require.EqualValues(t, 0, gauge("switchyard_archive_events"))
	require.EqualValues(t, 3600, gauge("switchyard_archive_retention_seconds"))
	require.EqualValues(t, 1<<20, gauge("switchyard_archive_max_bytes"))
	require.EqualValues(t, 0, gauge("switchyard_replays_running"))

	from := time.Now().Add(-time.Second)
	for i := range 10 {
		typ := "a"
		if i%2 == 0 {
			typ = "other"
		}
		_, err := r.Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("e%d", i), typ)})
		require.NoError(t, err)
	}
	require.EqualValues(t, 10, gauge("switchyard_archive_events"))
	require.Positive(t, gauge("switchyard_archive_bytes"))
	age := gauge("switchyard_archive_oldest_age_seconds")
	require.True(t, age >= 0 && age < 60, "oldest age %v", age)

	putTrigger(t, r, "late", "a")
	// Two events a second: the job runs for a few seconds.
	job, err := r.StartReplay(t.Context(), &switchyardv1.ReplaySpec{From: timestamppb.New(from),
		Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "late"}, Rate: 2})
	require.NoError(t, err)
	progress := map[string]string{"replay": job.GetId()}
	testenv.Eventually(t, 20*time.Second, func() bool {
		p, ok := value(t, reg, "switchyard_replay_progress_ratio", progress)
		return ok && p > 0 && p < 1 && gauge("switchyard_replays_running") == 1
	}, "the replay running, part done")
	testenv.Eventually(t, 30*time.Second, func() bool {
		_, ok := value(t, reg, "switchyard_replay_progress_ratio", progress)
		return !ok && gauge("switchyard_replays_running") == 0
	}, "the replay done")
	require.EqualValues(t, 10, gauge("switchyard_replay_events_scanned_total"))
	require.EqualValues(t, 5, gauge("switchyard_replay_deliveries_total"))

	eb := testenv.Embedded(t)
	off := startRouter(t, eb.Client, eb.Prefix, func(c *Config, _ *delivery.Invoker) { c.Metrics.StoreReadTTL = -1 })
	for _, name := range []string{"switchyard_archive_events", "switchyard_replays_running", "switchyard_replay_deliveries_total"} {
		_, ok := value(t, off.Registry(), name, none)
		require.False(t, ok, "%s with the archive off", name)
	}
}

// A replay from the archive into an ordered trigger goes through the
// ingest log and the fan-out, which put each event into the lane of its
// key: delivered in order per key, one at a time, with retries.
func TestReplayIntoOrderedTrigger(t *testing.T) {
	testenv.All(t, func(t *testing.T, b testenv.Backend) {
		inv := &laneInvoker{acked: map[string][]int{}, running: map[string]int{}}
		r := startRouter(t, b.Client, b.Prefix, archiving(ArchiveConfig{Retention: time.Hour}, inv))
		from := time.Now().Add(-time.Second)
		const keys, per = 3, 10 // archived, routed nowhere yet
		for seq := range per {
			for k := range keys {
				_, err := r.Publish(t.Context(), []*pb.CloudEvent{event(fmt.Sprintf("k%d/%d", k, seq), "o.x")})
				require.NoError(t, err)
			}
		}
		_, _, err := r.PutTrigger(t.Context(), trigger.ToProto(orderedTrigger("late", "o.")), store.PutApply, 0)
		require.NoError(t, err)
		job := runReplay(t, r, &switchyardv1.ReplaySpec{From: timestamppb.New(from), Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: "late"}})
		require.Equal(t, store.ReplaySucceeded, job.GetState(), job.GetError())
		want := make([]int, per)
		for i := range want {
			want[i] = i
		}
		for k := range keys {
			lk := fmt.Sprintf("late/k%d", k)
			testenv.Eventually(t, 30*time.Second, func() bool { return len(inv.lane(lk)) >= per }, "%s replayed", lk)
			require.Equal(t, want, inv.lane(lk), "%s in order", lk)
		}
		inv.mu.Lock()
		defer inv.mu.Unlock()
		require.Zero(t, inv.overlaps, "two attempts of one key at once")
	})
}
