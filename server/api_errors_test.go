package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// violations returns the fields of the BadRequest detail of err, after
// checking that err is INVALID_ARGUMENT.
func violations(t *testing.T, err error) []string {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				require.NotEmpty(t, v.GetDescription(), "violation of %s has no description", v.GetField())
				fields = append(fields, v.GetField())
			}
		}
	}
	require.NotEmpty(t, fields, "no BadRequest detail in %v", err)
	return fields
}

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func validEvent(id string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "/s", SpecVersion: "1.0", Type: "t"}
}

// TestEventServiceViolationsNameProtoFields checks the BadRequest field paths
// of the EventService: proto field names (spec_version, attributes["x"]),
// rooted at "event" for Publish and "events[i]" for PublishBatch, whose
// empty batch is "events".
func TestEventServiceViolationsNameProtoFields(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) { c.Limits.MaxEventBytes = 2048 })
	ctx := context.Background()
	api := e.client.Events()

	noSpec := validEvent("1")
	noSpec.SpecVersion = ""
	emptySubject := validEvent("2")
	emptySubject.Attributes = map[string]*pb.CloudEventAttributeValue{"subject": ceString("")}
	noSource := validEvent("3")
	noSource.Source = ""
	badTime := validEvent("4")
	badTime.Attributes = map[string]*pb.CloudEventAttributeValue{"time": ceString("yesterday")}
	noID := validEvent("")
	big := validEvent("5")
	big.Data = &pb.CloudEvent_BinaryData{BinaryData: make([]byte, 4096)}

	publish := map[string]struct {
		ev   *pb.CloudEvent
		want []string
	}{
		"missing specversion": {noSpec, []string{"event.spec_version"}},
		"empty subject":       {emptySubject, []string{`event.attributes["subject"]`}},
		"missing source":      {noSource, []string{"event.source"}},
		"no event":            {nil, []string{"event"}},
		"too large":           {big, []string{"event"}},
	}
	for name, tc := range publish {
		t.Run("Publish/"+name, func(t *testing.T) {
			_, err := api.Publish(ctx, &switchyardv1.PublishRequest{Event: tc.ev})
			require.Equal(t, tc.want, violations(t, err))
		})
	}
	batch := map[string]struct {
		evs  []*pb.CloudEvent
		want []string
	}{
		"two bad of three": {[]*pb.CloudEvent{validEvent("a"), noSource, badTime}, []string{"events[1].source", `events[2].attributes["time"]`}},
		"one bad of one":   {[]*pb.CloudEvent{noID}, []string{"events[0].id"}},
		"empty":            {nil, []string{"events"}},
		"second too large": {[]*pb.CloudEvent{validEvent("a"), big}, []string{"events[1]"}},
	}
	for name, tc := range batch {
		t.Run("PublishBatch/"+name, func(t *testing.T) {
			_, err := api.PublishBatch(ctx, &switchyardv1.PublishBatchRequest{Events: tc.evs})
			require.Equal(t, tc.want, violations(t, err))
		})
	}
}

// TestAPIRefusesInvalidTriggerNames checks that every TriggerService and
// DeadLetterService method refuses a trigger name the trigger rules do not
// allow, and every other bad field, with INVALID_ARGUMENT and a BadRequest
// naming the field, before anything reaches Redis: no key of a name such
// as "a}:x" appears.
func TestAPIRefusesInvalidTriggerNames(t *testing.T) {
	b := testenv.Real(t)
	e := startServer(t, b, nil)
	ctx := context.Background()
	e.apply(t, "name: ok\ntarget: {grpc: '127.0.0.1:1'}\n")
	triggers := e.client.Triggers()
	dlq := e.client.DeadLetters()
	forged := base64.RawURLEncoding.EncodeToString([]byte("a}:x\n1-0"))

	replay := func(req *switchyardv1.ReplayDeadLettersRequest) error {
		stream, err := dlq.ReplayDeadLetters(ctx, req)
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	cases := map[string]struct {
		call func() error
		want []string
	}{
		"GetTrigger": {func() error {
			_, err := triggers.GetTrigger(ctx, &switchyardv1.GetTriggerRequest{Name: "a}:x"})
			return err
		}, []string{"name"}},
		"GetTrigger empty": {func() error {
			_, err := triggers.GetTrigger(ctx, &switchyardv1.GetTriggerRequest{})
			return err
		}, []string{"name"}},
		"DeleteTrigger": {func() error {
			_, err := triggers.DeleteTrigger(ctx, &switchyardv1.DeleteTriggerRequest{Name: "a}:x", Purge: true})
			return err
		}, []string{"name"}},
		"GetTriggerStats": {func() error {
			_, err := triggers.GetTriggerStats(ctx, &switchyardv1.GetTriggerStatsRequest{Name: "Bad_Name"})
			return err
		}, []string{"name"}},
		"ApplyTrigger nil": {func() error {
			_, err := triggers.ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{})
			return err
		}, []string{"trigger"}},
		"ListDeadLetters trigger": {func() error {
			_, err := dlq.ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{Trigger: "a}:x"})
			return err
		}, []string{"trigger"}},
		"ListDeadLetters forged token": {func() error {
			_, err := dlq.ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{PageToken: forged})
			return err
		}, []string{"page_token"}},
		"ListDeadLetters bad token": {func() error {
			_, err := dlq.ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{PageToken: "!"})
			return err
		}, []string{"page_token"}},
		"ListDeadLetters page size": {func() error {
			_, err := dlq.ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{PageSize: -1})
			return err
		}, []string{"page_size"}},
		"ListDeadLetters page size over the limit": {func() error {
			_, err := dlq.ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{PageSize: 1001})
			return err
		}, []string{"page_size"}},
		"GetDeadLetter trigger": {func() error {
			_, err := dlq.GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: "a}:x/1-0"})
			return err
		}, []string{"id"}},
		"GetDeadLetter no trigger": {func() error {
			_, err := dlq.GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: "1-0"})
			return err
		}, []string{"id"}},
		"GetDeadLetter entry": {func() error {
			_, err := dlq.GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: "ok/+"})
			return err
		}, []string{"id"}},
		"ReplayDeadLetters no trigger": {func() error {
			return replay(&switchyardv1.ReplayDeadLettersRequest{All: true})
		}, []string{"trigger"}},
		"ReplayDeadLetters trigger": {func() error {
			return replay(&switchyardv1.ReplayDeadLettersRequest{Trigger: "a}:x", All: true})
		}, []string{"trigger"}},
		"ReplayDeadLetters to_trigger": {func() error {
			return replay(&switchyardv1.ReplayDeadLettersRequest{Trigger: "ok", ToTrigger: "a}:x", All: true})
		}, []string{"to_trigger"}},
		"ReplayDeadLetters neither ids nor all": {func() error {
			return replay(&switchyardv1.ReplayDeadLettersRequest{Trigger: "ok"})
		}, []string{"ids", "all"}},
		"ReplayDeadLetters id": {func() error {
			return replay(&switchyardv1.ReplayDeadLettersRequest{Trigger: "ok", Ids: []string{"ok/1-0", "a}:x/1-0"}})
		}, []string{"ids[1]"}},
		"ReplayDeadLetters rate": {func() error {
			return replay(&switchyardv1.ReplayDeadLettersRequest{Trigger: "ok", All: true, Rate: -1})
		}, []string{"rate"}},
		"PurgeDeadLetters trigger": {func() error {
			_, err := dlq.PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "a}:x", All: true})
			return err
		}, []string{"trigger"}},
		"PurgeDeadLetters modes": {func() error {
			_, err := dlq.PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "ok"})
			return err
		}, []string{"ids", "older_than", "all"}},
		"PurgeDeadLetters id": {func() error {
			_, err := dlq.PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "ok", Ids: []string{"1-0", "other/2-0"}})
			return err
		}, []string{"ids[1]"}},
		"PurgeDeadLetters older_than": {func() error {
			_, err := dlq.PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "ok", OlderThan: durationpb.New(-time.Hour)})
			return err
		}, []string{"older_than"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, violations(t, tc.call()))
		})
	}

	// A valid name that names nothing is still NOT_FOUND.
	_, err := triggers.GetTrigger(ctx, &switchyardv1.GetTriggerRequest{Name: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = dlq.GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: "ok/1-0"})
	require.Equal(t, codes.NotFound, status.Code(err))

	keys, err := b.Client.Keys(ctx, b.Prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		require.NotContains(t, k, "a}", "a refused name reached Redis")
	}
}

// TestPushbackNamesWhatStatsShow reproduces the case: a trigger at
// its max_queue with nothing queued and every event waiting for a retry.
// The 429 problem, the gRPC status and trigger stats give one figure under
// one name: undelivered events.
func TestPushbackNamesWhatStatsShow(t *testing.T) {
	e := startServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	fn := startFunction(t, func(context.Context, event.Event) (function.Result, error) {
		return function.Result{}, status.Error(codes.Unavailable, "not now")
	})
	e.apply(t, "name: full\ntarget: {grpc: '"+fn+"'}\n"+
		"delivery: {max_queue: 2, initial_backoff: 1h, max_backoff: 1h}\n")
	for _, id := range []string{"1", "2"} {
		_, err := e.client.Events().Publish(ctx, &switchyardv1.PublishRequest{Event: validEvent(id)})
		require.NoError(t, err)
	}
	var st *switchyardv1.TriggerStats
	testenv.Eventually(t, 10*time.Second, func() bool {
		stats, err := e.client.TriggerStats(ctx, "full")
		require.NoError(t, err)
		st = stats[0]
		return st.GetRetriesScheduled() == 2
	}, "both events waiting for a retry")
	require.EqualValues(t, 0, st.GetQueued())
	require.EqualValues(t, 2, st.GetUndelivered(), "undelivered counts the events waiting for a retry")
	require.EqualValues(t, 2, st.GetMaxQueue())

	_, err := e.client.Events().Publish(ctx, &switchyardv1.PublishRequest{Event: validEvent("3")})
	gs, _ := status.FromError(err)
	require.Equal(t, codes.ResourceExhausted, gs.Code(), "%v", err)
	require.Contains(t, gs.Message(), `trigger "full" has 2 undelivered events (max_queue 2)`)
	var info *errdetails.ErrorInfo
	for _, d := range gs.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	require.NotNil(t, info)
	require.Equal(t, "2", info.GetMetadata()["undelivered"])
	require.Equal(t, "2", info.GetMetadata()["max_queue"])

	code, body := e.post(t, "application/cloudevents+json", nil, []byte(`{"specversion":"1.0","id":"4","source":"/s","type":"t"}`))
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Contains(t, body["detail"], `trigger "full" has 2 undelivered events (max_queue 2)`)
	require.False(t, slices.ContainsFunc([]string{gs.Message(), body["detail"].(string)}, func(s string) bool {
		return strings.Contains(s, "queued")
	}), "the pushback speaks of queued events, which stats count differently")
}
