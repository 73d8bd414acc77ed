package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

func withArchive(c *server.Config) { c.Router.Archive = router.ArchiveConfig{Retention: time.Hour} }

// waitReplay polls a replay as c until it ends.
func waitReplay(t *testing.T, c *sdk.Client, id string) *switchyardv1.Replay {
	t.Helper()
	var job *switchyardv1.Replay
	testenv.Eventually(t, 20*time.Second, func() bool {
		resp, err := c.Archive().GetReplay(context.Background(), &switchyardv1.GetReplayRequest{Id: id})
		if err != nil {
			return false
		}
		job = resp.GetReplay()
		return job.GetState() != "running"
	}, "replay %s ends", id)
	return job
}

// TestArchiveTenants: each tenant reads only its own archived events,
// replays only into its triggers (its events only, by their scope), and
// sees and cancels only its own replays; viewers read but do not replay;
// an identity scoped by trigger names alone reads no archived event.
func TestArchiveTenants(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), withArchive)
	ctx := context.Background()
	opA := e.as(t, e.key(t, "op-a", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}, Sources: []string{"/a/"}}))
	opB := e.as(t, e.key(t, "op-b", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"b-"}, Sources: []string{"/b/"}}))
	viewA := e.as(t, e.key(t, "view-a", []string{"viewer"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}, Sources: []string{"/a/"}}))
	namesOnly := e.as(t, e.key(t, "names-only", []string{"viewer"}, &switchyardv1.TokenScope{Triggers: []string{"c-"}}))
	pubA := e.as(t, e.key(t, "pub-a", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/a/"}}))
	pubB := e.as(t, e.key(t, "pub-b", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/b/"}}))
	from := timestamppb.New(time.Now().Add(-time.Second))
	for i := range 5 {
		require.NoError(t, pubA.Publish(ctx, scopedEvent(fmt.Sprintf("a%d", i), "/a/shop", "order")))
		require.NoError(t, pubB.Publish(ctx, scopedEvent(fmt.Sprintf("b%d", i), "/b/bank", "order")))
	}
	recA := &received{}
	fnA := startFunction(t, recorder(recA))
	for _, c := range []struct {
		cl   *sdk.Client
		name string
	}{{opA, "a-late"}, {opB, "b-late"}} {
		_, err := c.cl.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: c.name, Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fnA}}})
		require.NoError(t, err)
	}

	// Reading.
	got, err := viewA.Archive().ListArchivedEvents(ctx, &switchyardv1.ListArchivedEventsRequest{Limit: 100})
	require.NoError(t, err)
	require.Len(t, got.GetEvents(), 5)
	for _, ev := range got.GetEvents() {
		require.Equal(t, "/a/shop", ev.GetEvent().GetSource())
	}
	require.Equal(t, "a4", got.GetEvents()[0].GetEvent().GetId(), "newest first")
	_, err = namesOnly.Archive().ListArchivedEvents(ctx, &switchyardv1.ListArchivedEventsRequest{Limit: 10})
	requireCode(t, err, codes.PermissionDenied, "event scope")
	_, err = viewA.Archive().ListArchivedEvents(ctx, &switchyardv1.ListArchivedEventsRequest{Limit: 1001})
	st := requireCode(t, err, codes.InvalidArgument, "limit")
	require.Equal(t, "limit", badRequestField(st))
	stats, err := viewA.Archive().GetArchiveStats(ctx, &switchyardv1.GetArchiveStatsRequest{})
	require.NoError(t, err)
	require.True(t, stats.GetStats().GetEnabled())
	require.EqualValues(t, 10, stats.GetStats().GetEvents())

	// Replaying.
	into := func(name string) *switchyardv1.StartReplayRequest {
		return &switchyardv1.StartReplayRequest{Spec: &switchyardv1.ReplaySpec{From: from, Destination: &switchyardv1.ReplaySpec_Trigger{Trigger: name}}}
	}
	_, err = viewA.Archive().StartReplay(ctx, into("a-late"))
	requireCode(t, err, codes.PermissionDenied, "archive.replay")
	_, err = opA.Archive().StartReplay(ctx, into("b-late"))
	requireCode(t, err, codes.NotFound, "not found")
	_, err = opA.Archive().StartReplay(ctx, &switchyardv1.StartReplayRequest{Spec: &switchyardv1.ReplaySpec{Destination: &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}}})
	st = requireCode(t, err, codes.InvalidArgument, "spec.from")
	require.Equal(t, "spec.from", badRequestField(st))
	res, err := opA.Archive().StartReplay(ctx, into("a-late"))
	require.NoError(t, err)
	job := waitReplay(t, opA, res.GetReplay().GetId())
	require.Equal(t, "succeeded", job.GetState(), job.GetError())
	require.EqualValues(t, 10, job.GetScanned())
	require.EqualValues(t, 5, job.GetSent(), "the trigger's scope keeps tenant B's events out")
	require.Equal(t, "op-a", job.GetSpec().GetCreatedBy())
	testenv.Eventually(t, 10*time.Second, func() bool { return recA.count() == 5 }, "a-late backfilled")
	for i := range 5 {
		ev, _, ok := recA.byID(fmt.Sprintf("a%d", i))
		require.True(t, ok)
		require.Equal(t, job.GetId(), ev.Extensions()["switchyardreplay"])
	}
	all, err := opA.Archive().StartReplay(ctx, &switchyardv1.StartReplayRequest{Spec: &switchyardv1.ReplaySpec{From: from,
		Destination: &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}, DryRun: true, ScopeTriggers: []string{""}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a-"}, all.GetReplay().GetSpec().GetScopeTriggers(), "the server sets the scope, whatever the request says")
	dry := waitReplay(t, opA, all.GetReplay().GetId())
	require.EqualValues(t, 5, dry.GetSent(), "only a-late among the triggers")

	// Seeing and cancelling.
	_, err = opB.Archive().GetReplay(ctx, &switchyardv1.GetReplayRequest{Id: job.GetId()})
	requireCode(t, err, codes.NotFound, "not found")
	_, err = opB.Archive().CancelReplay(ctx, &switchyardv1.CancelReplayRequest{Id: job.GetId()})
	requireCode(t, err, codes.NotFound, "not found")
	_, err = opB.Archive().GetReplay(ctx, &switchyardv1.GetReplayRequest{Id: "../x"})
	st = requireCode(t, err, codes.InvalidArgument, "id")
	require.Equal(t, "id", badRequestField(st))
	listB, err := opB.Archive().ListReplays(ctx, &switchyardv1.ListReplaysRequest{})
	require.NoError(t, err)
	require.Empty(t, listB.GetReplays())
	listA, err := viewA.Archive().ListReplays(ctx, &switchyardv1.ListReplaysRequest{})
	require.NoError(t, err)
	require.Len(t, listA.GetReplays(), 2)
	listAdmin, err := e.as(t, adminToken).Archive().ListReplays(ctx, &switchyardv1.ListReplaysRequest{})
	require.NoError(t, err)
	require.Len(t, listAdmin.GetReplays(), 2)
}

// Without an archive, stats say so and replays are FAILED_PRECONDITION.
func TestArchiveOff(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), nil)
	ctx := context.Background()
	stats, err := e.client.Archive().GetArchiveStats(ctx, &switchyardv1.GetArchiveStatsRequest{})
	require.NoError(t, err)
	require.False(t, stats.GetStats().GetEnabled())
	_, err = e.client.Archive().StartReplay(ctx, &switchyardv1.StartReplayRequest{Spec: &switchyardv1.ReplaySpec{
		From: timestamppb.New(time.Now().Add(-time.Hour)), Destination: &switchyardv1.ReplaySpec_AllMatching{AllMatching: true}}})
	requireCode(t, err, codes.FailedPrecondition, "archive is off")
	_, err = e.client.Archive().ListArchivedEvents(ctx, &switchyardv1.ListArchivedEventsRequest{Limit: 1})
	requireCode(t, err, codes.FailedPrecondition, "archive is off")
}

// On the embedded store, which holds the archive in the process's memory,
// an archive given only a retention is bounded by size too.
func TestArchiveEmbeddedIsBounded(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) {
		withArchive(c)
		c.RedisURL = "" // the server's own embedded store
	})
	stats, err := e.client.Archive().GetArchiveStats(context.Background(), &switchyardv1.GetArchiveStatsRequest{})
	require.NoError(t, err)
	require.True(t, stats.GetStats().GetEnabled())
	require.EqualValues(t, router.DefaultEmbeddedArchiveMaxBytes, stats.GetStats().GetMaxBytes())
	require.Equal(t, time.Hour, stats.GetStats().GetRetention().AsDuration())
}
