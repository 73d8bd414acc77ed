package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// laneRecorder acknowledges events in the order it gets them per subject,
// except the ids in poison, which it dead-letters.
type laneRecorder struct {
	mu     sync.Mutex
	poison map[string]bool
	got    map[string][]string // subject → ids acknowledged
}

func (l *laneRecorder) handle(_ context.Context, ev event.Event) (function.Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.poison[ev.ID()] {
		return function.Result{}, function.Dead(errors.New("poison"))
	}
	l.got[ev.Subject()] = append(l.got[ev.Subject()], ev.ID())
	return function.Result{}, nil
}

func (l *laneRecorder) acked(subject string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got[subject]...)
}

func (l *laneRecorder) cure(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.poison, id)
}

func laneEvent(id, subject string) event.Event {
	ev := newEvent(id, "lane")
	ev.SetSource("/a/lanes")
	ev.SetSubject(subject)
	return ev
}

func replayAll(t *testing.T, c *sdk.Client, trigger string) {
	t.Helper()
	st, err := c.DeadLetters().ReplayDeadLetters(context.Background(), &switchyardv1.ReplayDeadLettersRequest{Trigger: trigger, All: true})
	require.NoError(t, err)
	for {
		_, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err)
	}
}

// TestBlockedLaneReplayAndSkip: with on_dead block, a dead letter stops its
// key and only its key; trigger stats shows the blocked lane; replaying the
// dead letter delivers it first and unblocks the key; a skip (operators of
// the trigger's scope only) moves the key on without it.
func TestBlockedLaneReplayAndSkip(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	rec := &laneRecorder{poison: map[string]bool{"k1-0": true, "k1-3": true}, got: map[string][]string{}}
	fn := startFunction(t, rec.handle)
	op := e.as(t, e.key(t, "tenant-a", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}, Sources: []string{"/a/"}}))
	other := e.as(t, e.key(t, "tenant-b", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"b-"}, Sources: []string{"/b/"}}))
	pub := e.as(t, e.key(t, "pub-a", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/a/"}}))
	viewer := e.as(t, e.key(t, "viewer-a", []string{"viewer"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}}))
	_, err := op.ApplyTrigger(ctx, &switchyardv1.Trigger{
		Name: "a-ordered", Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}},
		Filter:   &switchyardv1.Filter{Attributes: map[string]string{"type": "lane"}},
		Delivery: &switchyardv1.DeliveryPolicy{Ordering: &switchyardv1.Ordering{Key: "subject", OnDead: switchyardv1.OnDead_ON_DEAD_BLOCK}},
	})
	require.NoError(t, err)
	for _, ev := range []event.Event{laneEvent("k1-0", "k1"), laneEvent("k1-1", "k1"), laneEvent("k1-2", "k1"), laneEvent("k2-0", "k2"), laneEvent("k2-1", "k2")} {
		require.NoError(t, pub.Publish(ctx, ev))
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rec.acked("k2")) == 2 }, "the other key delivered")
	var st *switchyardv1.TriggerStats
	testenv.Eventually(t, 10*time.Second, func() bool {
		s, err := op.TriggerStats(ctx, "a-ordered")
		require.NoError(t, err)
		st = s[0]
		// k2's acknowledgements may be recorded a moment after its
		// deliveries (AckLinger).
		return st.GetLanesBlocked() == 1 && st.GetLanesActive() == 1
	}, "k1 blocked, k2 done")
	require.Empty(t, rec.acked("k1"))
	letters := deadLetters(t, op, "a-ordered")
	require.Len(t, letters, 1)
	require.Equal(t, "k1-0", letters[0].GetEvent().GetId())
	require.Len(t, st.GetBlockedLanes(), 1)
	require.Equal(t, "k1", st.GetBlockedLanes()[0].GetKey())
	require.True(t, strings.HasSuffix(letters[0].GetId(), st.GetBlockedLanes()[0].GetDeadLetterId()), "%s names %s", st.GetBlockedLanes()[0], letters[0].GetId())
	require.EqualValues(t, 1, st.GetLanesActive())
	require.EqualValues(t, 2, st.GetLaneWaiting())
	require.EqualValues(t, 2, st.GetUndelivered(), "the events behind the block are undelivered")

	// Replay: the dead event first, then the rest of its key.
	rec.cure("k1-0")
	replayAll(t, op, "a-ordered")
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rec.acked("k1")) == 3 }, "k1 delivered after the replay")
	require.Equal(t, []string{"k1-0", "k1-1", "k1-2"}, rec.acked("k1"))

	// Blocked again; refusals first, then a skip.
	require.NoError(t, pub.Publish(ctx, laneEvent("k1-3", "k1")))
	require.NoError(t, pub.Publish(ctx, laneEvent("k1-4", "k1")))
	testenv.Eventually(t, 10*time.Second, func() bool {
		s, err := op.TriggerStats(ctx, "a-ordered")
		require.NoError(t, err)
		return s[0].GetLanesBlocked() == 1
	}, "k1 blocked again")
	requireCode(t, viewer.SkipLane(ctx, "a-ordered", "k1"), codes.PermissionDenied, "")
	requireCode(t, other.SkipLane(ctx, "a-ordered", "k1"), codes.NotFound, "")
	requireCode(t, op.SkipLane(ctx, "a-ordered", "k2"), codes.FailedPrecondition, "not blocked")
	st2 := requireCode(t, op.SkipLane(ctx, "a-ordered", strings.Repeat("x", 201)), codes.InvalidArgument, "")
	require.Equal(t, "key", badRequestField(st2))
	require.NoError(t, op.SkipLane(ctx, "a-ordered", "k1"))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rec.acked("k1")) == 4 }, "k1 moved on")
	require.Equal(t, []string{"k1-0", "k1-1", "k1-2", "k1-4"}, rec.acked("k1"))
	require.Len(t, deadLetters(t, op, "a-ordered"), 1, "the skipped dead letter stays")
	var s []*switchyardv1.TriggerStats
	testenv.Eventually(t, 10*time.Second, func() bool {
		s, err = op.TriggerStats(ctx, "a-ordered")
		require.NoError(t, err)
		return s[0].GetLanesActive() == 0
	}, "k1's last acknowledgement recorded")
	require.Zero(t, s[0].GetLanesBlocked())
	require.Equal(t, fmt.Sprint(0), fmt.Sprint(s[0].GetUndelivered()))
}

// TestReplayIntoOrderedTrigger: dead letters of one trigger replayed into
// another, ordered one (--to-trigger) go to the end of the lane of their
// key under that trigger's ordering: behind a blocked key's events, and
// delivered after them once the key moves on.
func TestReplayIntoOrderedTrigger(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	rec := &laneRecorder{poison: map[string]bool{"k1-0": true, "s-0": true}, got: map[string][]string{}}
	fn := startFunction(t, rec.handle)
	op := e.as(t, e.key(t, "tenant-a", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}, Sources: []string{"/a/"}}))
	pub := e.as(t, e.key(t, "pub-a", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/a/"}}))
	target := &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}
	_, err := op.ApplyTrigger(ctx, &switchyardv1.Trigger{
		Name: "a-into", Target: target,
		Filter:   &switchyardv1.Filter{Attributes: map[string]string{"type": "lane"}},
		Delivery: &switchyardv1.DeliveryPolicy{Ordering: &switchyardv1.Ordering{Key: "subject", OnDead: switchyardv1.OnDead_ON_DEAD_BLOCK}},
	})
	require.NoError(t, err)
	_, err = op.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "a-from", Target: target, Filter: &switchyardv1.Filter{Attributes: map[string]string{"type": "from"}}})
	require.NoError(t, err)
	from := laneEvent("s-0", "k1")
	from.SetType("from")
	for _, ev := range []event.Event{laneEvent("k1-0", "k1"), laneEvent("k1-1", "k1"), from} {
		require.NoError(t, pub.Publish(ctx, ev))
	}
	stats := func() *switchyardv1.TriggerStats {
		s, err := op.TriggerStats(ctx, "a-into")
		require.NoError(t, err)
		return s[0]
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return stats().GetLanesBlocked() == 1 }, "k1 blocked")
	testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, op, "a-from")) == 1 }, "s-0 dead")
	require.EqualValues(t, 1, stats().GetLaneWaiting())

	rec.cure("s-0")
	st, err := op.DeadLetters().ReplayDeadLetters(ctx, &switchyardv1.ReplayDeadLettersRequest{Trigger: "a-from", All: true, ToTrigger: "a-into"})
	require.NoError(t, err)
	for {
		p, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if p.GetDone() {
			require.EqualValues(t, 1, p.GetReplayed())
		}
	}
	require.EqualValues(t, 2, stats().GetLaneWaiting(), "the replayed event waits in k1's lane, behind k1-1")
	require.Empty(t, rec.acked("k1"))
	require.NoError(t, op.SkipLane(ctx, "a-into", "k1"))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rec.acked("k1")) == 2 }, "k1 moved on")
	require.Equal(t, []string{"k1-1", "s-0"}, rec.acked("k1"))
}
