package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// structured decodes events written in the JSON event format.
func structured(t *testing.T, docs ...string) []*pb.CloudEvent {
	t.Helper()
	out := make([]*pb.CloudEvent, len(docs))
	for i, d := range docs {
		ev, err := cloudevent.DecodeStructured([]byte(d))
		require.NoError(t, err, d)
		out[i] = ev
	}
	return out
}

func testFilterByName(name string, evs []*pb.CloudEvent) *switchyardv1.TestFilterRequest {
	return &switchyardv1.TestFilterRequest{Subject: &switchyardv1.TestFilterRequest_Name{Name: name}, Events: evs}
}

func testFilterDraft(t *switchyardv1.Trigger, evs []*pb.CloudEvent) *switchyardv1.TestFilterRequest {
	return &switchyardv1.TestFilterRequest{Subject: &switchyardv1.TestFilterRequest_Trigger{Trigger: t}, Events: evs}
}

// filterTestTriggers are triggers of every filter kind, for the events of
// filterTestEvents.
const filterTestTriggers = `
name: exact
filter: {attributes: {type: com.shop.order}}
target: {grpc: "%[1]s"}
---
name: prefix-cel
filter: {prefix: {source: /shop/}, cel: "data.total > 100"}
target: {grpc: "%[1]s"}
---
name: cesql-guarded
filter: {cesql: "EXISTS subject AND subject LIKE 'eu-%%'"}
target: {grpc: "%[1]s"}
---
name: cesql-unguarded
filter: {cesql: "subject LIKE 'eu-%%'"}
target: {grpc: "%[1]s"}
---
name: any-not
filter:
  any: [{attributes: {tenant: acme}}, {suffix: {type: .deleted}}]
  not: {prefix: {source: /bank/}}
target: {grpc: "%[1]s"}
---
name: everything
target: {grpc: "%[1]s"}
---
name: scoped
filter: {cel: "has(data.total)"}
scope: {sources: [/shop/eu]}
target: {grpc: "%[1]s"}
`

var filterTestEvents = []string{
	`{"specversion":"1.0","id":"1","source":"/shop/eu","type":"com.shop.order","subject":"eu-1","data":{"total":150}}`,
	`{"specversion":"1.0","id":"2","source":"/shop/us","type":"com.shop.order","subject":"us-1","data":{"total":50}}`,
	`{"specversion":"1.0","id":"3","source":"/shop/eu","type":"com.shop.order","datacontenttype":"text/plain","data":"total=500"}`,
	`{"specversion":"1.0","id":"4","source":"/bank/1","type":"com.bank.deleted","tenant":"acme"}`,
	`{"specversion":"1.0","id":"5","source":"/crm","type":"com.crm.deleted","subject":"eu-9","data":{"total":1000}}`,
	`{"specversion":"1.0","id":"6","source":"/shop/eu/x","type":"other","tenant":"acme","data":[1,2]}`,
}

// TestTestFilterAgreesWithRouting: for stored triggers and for the same
// triggers sent as drafts, TestFilter's verdicts are the router's: each
// event published routes to exactly the triggers TestFilter says match it.
func TestTestFilterAgreesWithRouting(t *testing.T) {
	e := startServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	fn := startFunction(t, recorder(&received{}))
	e.apply(t, fmt.Sprintf(filterTestTriggers, fn))
	specs, err := trigger.Parse(fmt.Appendf(nil, filterTestTriggers, fn))
	require.NoError(t, err)
	evs := structured(t, filterTestEvents...)

	routed := make([]map[string]bool, len(evs))
	for i, ev := range evs {
		res, err := e.client.Events().Publish(ctx, &switchyardv1.PublishRequest{Event: ev})
		require.NoError(t, err)
		routed[i] = map[string]bool{}
		for _, n := range res.GetTriggers() {
			routed[i][n] = true
		}
	}
	matches := 0
	for _, spec := range specs {
		stored, err := e.client.Triggers().TestFilter(ctx, testFilterByName(spec.Name, evs))
		require.NoError(t, err, spec.Name)
		require.Equal(t, spec.Name, stored.GetTrigger().GetName())
		draft, err := e.client.Triggers().TestFilter(ctx, testFilterDraft(trigger.ToProto(spec), evs))
		require.NoError(t, err, spec.Name)
		require.Len(t, stored.GetResults(), len(evs))
		for i, r := range stored.GetResults() {
			require.Equal(t, routed[i][spec.Name], r.GetMatched(), "trigger %s, event %d: %v", spec.Name, i+1, r)
			require.True(t, proto.Equal(r, draft.GetResults()[i]), "a draft of the same trigger explains alike")
			failed := 0
			for _, c := range r.GetClauses() {
				if !c.GetHeld() {
					failed++
					require.NotEmpty(t, c.GetReason())
					require.NotEmpty(t, c.GetPath())
				}
			}
			require.Equal(t, r.GetMatched(), failed == 0)
			if r.GetMatched() {
				matches++
			}
		}
	}
	require.Greater(t, matches, 5, "the events must exercise matches too")
	require.Less(t, matches, len(specs)*len(evs)-5, "and misses")

	// Two reasons, as a user reads them.
	res, err := e.client.Triggers().TestFilter(ctx, testFilterByName("prefix-cel", evs[2:3]))
	require.NoError(t, err)
	cel := res.GetResults()[0].GetClauses()[1]
	require.Equal(t, "filter.cel", cel.GetPath())
	require.Contains(t, cel.GetReason(), `the datacontenttype is "text/plain", not JSON, so data is a string`)
	res, err = e.client.Triggers().TestFilter(ctx, testFilterByName("scoped", evs[1:2]))
	require.NoError(t, err)
	sc := res.GetResults()[0].GetClauses()[0]
	require.Equal(t, "scope.sources", sc.GetPath())
	require.False(t, sc.GetHeld())
	require.Equal(t, `source "/shop/us" does not start with "/shop/eu"`, sc.GetReason())
}

// TestTestFilterAuthorization: TestFilter is a trigger read: a viewer may
// call it, a tenant's key sees only its triggers (another tenant's answers
// NOT_FOUND exactly as a missing one), and a draft gets the caller's event
// scope, whose clause the answer shows.
func TestTestFilterAuthorization(t *testing.T) {
	e := startAuthServer(t, testenv.Embedded(t), nil)
	ctx := context.Background()
	fn := startFunction(t, recorder(&received{}))
	admin := e.as(t, adminToken)
	target := &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}
	for _, n := range []string{"a-orders", "b-orders"} {
		_, err := admin.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: n, Target: target,
			Filter: &switchyardv1.Filter{Attributes: map[string]string{"type": "order"}},
			Scope:  &switchyardv1.EventScope{Sources: []string{"/" + n[:1] + "/"}}})
		require.NoError(t, err)
	}
	evs := structured(t, `{"specversion":"1.0","id":"1","source":"/a/1","type":"order"}`, `{"specversion":"1.0","id":"2","source":"/b/1","type":"order"}`)

	viewer := e.as(t, e.key(t, "viewer", []string{"viewer"}, nil))
	res, err := viewer.Triggers().TestFilter(ctx, testFilterByName("b-orders", evs))
	require.NoError(t, err, "a viewer may test any trigger")
	require.False(t, res.GetResults()[0].GetMatched())
	require.True(t, res.GetResults()[1].GetMatched())

	tenantA := e.as(t, e.key(t, "tenant-a", []string{"viewer"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}, Sources: []string{"/a/"}}))
	res, err = tenantA.Triggers().TestFilter(ctx, testFilterByName("a-orders", evs))
	require.NoError(t, err)
	require.True(t, res.GetResults()[0].GetMatched())
	require.False(t, res.GetResults()[1].GetMatched())
	require.Equal(t, "scope.sources", res.GetResults()[1].GetClauses()[0].GetPath())
	_, err = tenantA.Triggers().TestFilter(ctx, testFilterByName("b-orders", evs))
	requireCode(t, err, codes.NotFound, "not found")
	_, errMissing := tenantA.Triggers().TestFilter(ctx, testFilterByName("a-missing", evs))
	_, errGet := tenantA.GetTrigger(ctx, "b-orders")
	require.Equal(t, strings.Replace(status.Convert(errMissing).Message(), "a-missing", "b-orders", 1), status.Convert(err).Message(),
		"another tenant's trigger answers exactly as a missing one")
	require.Equal(t, status.Convert(errGet).Message(), status.Convert(err).Message(), "and as GetTrigger answers")

	// A draft gets the caller's scope: the other tenant's events miss it.
	draft := &switchyardv1.Trigger{Name: "a-draft", Target: target}
	res, err = tenantA.Triggers().TestFilter(ctx, testFilterDraft(draft, evs))
	require.NoError(t, err)
	require.Equal(t, []string{"/a/"}, res.GetTrigger().GetScope().GetSources())
	require.True(t, res.GetResults()[0].GetMatched())
	require.False(t, res.GetResults()[1].GetMatched())
	require.Equal(t, "scope.sources", res.GetResults()[1].GetClauses()[0].GetPath())
	res, err = tenantA.Triggers().TestFilter(ctx, testFilterDraft(&switchyardv1.Trigger{Target: target}, evs[:1]))
	require.NoError(t, err, "a draft may have no name")
	require.Empty(t, res.GetTrigger().GetName())
	_, err = tenantA.Triggers().TestFilter(ctx, testFilterDraft(&switchyardv1.Trigger{Name: "b-draft", Target: target}, evs))
	st := requireCode(t, err, codes.PermissionDenied, "outside the scope")
	require.Equal(t, "trigger.name", badRequestField(st))
	_, err = tenantA.Triggers().TestFilter(ctx, testFilterDraft(&switchyardv1.Trigger{Name: "a-wide", Target: target,
		Scope: &switchyardv1.EventScope{Sources: []string{"/"}}}, evs))
	requireCode(t, err, codes.PermissionDenied, "trigger.scope")

	publisher := e.as(t, e.key(t, "pub", []string{"publisher"}, nil))
	_, err = publisher.Triggers().TestFilter(ctx, testFilterByName("a-orders", evs))
	requireCode(t, err, codes.PermissionDenied, string(auth.PermTriggersRead))
	_, err = e.client.Triggers().TestFilter(ctx, testFilterByName("a-orders", evs))
	requireCode(t, err, codes.Unauthenticated, "")
}

// TestTestFilterRefusesBadInput: a missing subject, no events, too many,
// an invalid event or draft are INVALID_ARGUMENT naming the field.
func TestTestFilterRefusesBadInput(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) { c.Router.MaxBatchEvents = 2 })
	ctx := context.Background()
	fn := startFunction(t, recorder(&received{}))
	e.apply(t, fmt.Sprintf("name: x\ntarget: {grpc: %q}\n", fn))
	ok := structured(t, `{"specversion":"1.0","id":"1","source":"/a","type":"t"}`)[0]
	noSource := &pb.CloudEvent{Id: "2", SpecVersion: "1.0", Type: "t"}
	cases := map[string]struct {
		req   *switchyardv1.TestFilterRequest
		code  codes.Code
		field string
	}{
		"no trigger":    {&switchyardv1.TestFilterRequest{Events: []*pb.CloudEvent{ok}}, codes.InvalidArgument, "name"},
		"no event":      {testFilterByName("x", nil), codes.InvalidArgument, "events"},
		"too many":      {testFilterByName("x", []*pb.CloudEvent{ok, ok, ok}), codes.InvalidArgument, "events"},
		"invalid event": {testFilterByName("x", []*pb.CloudEvent{ok, noSource}), codes.InvalidArgument, "events[1].source"},
		"bad name":      {testFilterByName("X}", []*pb.CloudEvent{ok}), codes.InvalidArgument, "name"},
		"missing":       {testFilterByName("nope", []*pb.CloudEvent{ok}), codes.NotFound, ""},
		"invalid draft": {testFilterDraft(&switchyardv1.Trigger{Name: "d", Filter: &switchyardv1.Filter{Cel: "data.total >"},
			Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}}, []*pb.CloudEvent{ok}), codes.InvalidArgument, "trigger.filter.cel"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.client.Triggers().TestFilter(ctx, tc.req)
			st := requireCode(t, err, tc.code, "")
			if tc.field != "" {
				require.Equal(t, tc.field, badRequestField(st), "%v", err)
			}
		})
	}
}

// TestDryRunChangesNothing: a dry-run create, apply or update answers what
// the real one would (the server's defaults, created / changed / refused)
// and stores nothing, announces nothing; its audit record says dry run.
func TestDryRunChangesNothing(t *testing.T) {
	b := testenv.Real(t)
	g, err := egress.New(egress.Config{AllowTargets: []string{}})
	require.NoError(t, err)
	e := startAuthServer(t, b, func(c *server.Config) { c.Router.Outbound = delivery.Outbound{Guard: g} })
	ctx := context.Background()
	st := store.New(b.Client, b.Prefix)
	admin := e.as(t, adminToken)
	target := &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "fn.example.com:7070"}}
	unchanged := func() func() {
		before, err := st.CurrentVersion(ctx)
		require.NoError(t, err)
		list, _, err := st.ListTriggers(ctx)
		require.NoError(t, err)
		return func() {
			t.Helper()
			after, err := st.CurrentVersion(ctx)
			require.NoError(t, err)
			require.Equal(t, before, after, "a dry run announces no change")
			now, _, err := st.ListTriggers(ctx)
			require.NoError(t, err)
			require.Equal(t, len(list), len(now))
			for i := range list {
				require.True(t, proto.Equal(list[i], now[i]), "a dry run stores nothing")
			}
		}
	}

	check := unchanged()
	res, err := admin.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: &switchyardv1.Trigger{Name: "orders", Target: target}})
	require.NoError(t, err)
	check()
	require.True(t, res.GetDryRun())
	require.True(t, res.GetCreated())
	require.True(t, res.GetChanged())
	require.Nil(t, res.GetPrevious())
	require.EqualValues(t, 1, res.GetTrigger().GetGeneration())
	require.EqualValues(t, trigger.DefaultMaxAttempts, res.GetTrigger().GetDelivery().GetMaxAttempts(), "the server's defaults")
	_, err = admin.GetTrigger(ctx, "orders")
	requireCode(t, err, codes.NotFound, "")

	real, err := admin.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "orders", Target: target})
	require.NoError(t, err)
	check = unchanged()
	res, err = admin.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: &switchyardv1.Trigger{Name: "orders", Target: target}})
	require.NoError(t, err)
	require.False(t, res.GetCreated() || res.GetChanged(), "unchanged")
	require.True(t, proto.Equal(real.GetTrigger(), res.GetPrevious()))
	changed := &switchyardv1.Trigger{Name: "orders", Target: target, Description: "new", Delivery: &switchyardv1.DeliveryPolicy{MaxAttempts: 3}}
	res, err = admin.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: changed})
	require.NoError(t, err)
	require.True(t, res.GetChanged())
	require.False(t, res.GetCreated())
	require.EqualValues(t, 2, res.GetTrigger().GetGeneration())
	require.True(t, proto.Equal(real.GetTrigger(), res.GetPrevious()))
	diff := trigger.Diff(trigger.FromProto(res.GetPrevious()), trigger.FromProto(res.GetTrigger()))
	require.Equal(t, []trigger.FieldChange{{Path: "delivery.max_attempts", Before: "8", After: "3"}, {Path: "description", After: `"new"`}}, diff)
	up, err := admin.Triggers().UpdateTrigger(ctx, &switchyardv1.UpdateTriggerRequest{DryRun: true, Trigger: changed, ExpectedGeneration: 1})
	require.NoError(t, err)
	require.True(t, up.GetDryRun())
	require.True(t, proto.Equal(real.GetTrigger(), up.GetPrevious()))
	_, err = admin.Triggers().UpdateTrigger(ctx, &switchyardv1.UpdateTriggerRequest{DryRun: true, Trigger: changed, ExpectedGeneration: 7})
	requireCode(t, err, codes.FailedPrecondition, "generation")
	_, err = admin.Triggers().CreateTrigger(ctx, &switchyardv1.CreateTriggerRequest{DryRun: true, Trigger: changed})
	requireCode(t, err, codes.AlreadyExists, "")
	cr, err := admin.Triggers().CreateTrigger(ctx, &switchyardv1.CreateTriggerRequest{DryRun: true, Trigger: &switchyardv1.Trigger{Name: "new", Target: target}})
	require.NoError(t, err)
	require.True(t, cr.GetDryRun())

	// The server's policy and the caller's rights, as for a real change.
	denied := &switchyardv1.Trigger{Name: "orders", Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "169.254.169.254:80"}}}
	_, errReal := admin.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{Trigger: denied})
	_, err = admin.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: denied})
	requireCode(t, err, codes.InvalidArgument, "egress")
	require.True(t, proto.Equal(status.Convert(errReal).Proto(), status.Convert(err).Proto()), "refused as the real apply is")
	require.Equal(t, "trigger.target.grpc", badRequestField(status.Convert(err)))
	viewer := e.as(t, e.key(t, "viewer", []string{"viewer"}, nil))
	_, err = viewer.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: changed})
	requireCode(t, err, codes.PermissionDenied, "")
	tenant := e.as(t, e.key(t, "shop-op", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"shop-"}, Sources: []string{"/shop/"}}))
	_, err = tenant.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: changed})
	requireCode(t, err, codes.PermissionDenied, "trigger.name")
	res, err = tenant.Triggers().ApplyTrigger(ctx, &switchyardv1.ApplyTriggerRequest{DryRun: true, Trigger: &switchyardv1.Trigger{Name: "shop-x", Target: target}})
	require.NoError(t, err)
	require.Equal(t, []string{"/shop/"}, res.GetTrigger().GetScope().GetSources(), "the caller's scope, as a real apply adds it")
	check()

	recs, err := admin.Audit().ListAuditRecords(ctx, &switchyardv1.ListAuditRecordsRequest{Limit: 100})
	require.NoError(t, err)
	var dry []string
	for _, r := range recs.GetRecords() {
		if strings.HasPrefix(r.GetDetail(), "dry run: ") {
			dry = append(dry, r.GetAction()+" "+r.GetOutcome()+" "+r.GetDetail())
		}
	}
	require.Len(t, dry, 11, "every dry run is audited as one: %q", dry)
	require.Equal(t, auth.ActionTriggerApply+" ok dry run: would create it, nothing stored", dry[0])
	require.Equal(t, auth.ActionTriggerApply+" ok dry run: unchanged, nothing stored", dry[1])
	require.Equal(t, auth.ActionTriggerApply+" ok dry run: would replace it (generation 2), nothing stored", dry[2])
	require.True(t, strings.HasPrefix(dry[4], auth.ActionTriggerUpdate+" failed dry run: "), dry[4])
	require.True(t, strings.HasPrefix(dry[8], auth.ActionTriggerApply+" denied dry run: "), dry[8])
}

// TestSDKFilterTestAndDryRun: the SDK's TestFilter, TestTriggerFilter and
// DryRunApplyTrigger against a server.
func TestSDKFilterTestAndDryRun(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), nil)
	ctx := context.Background()
	fn := startFunction(t, recorder(&received{}))
	e.apply(t, fmt.Sprintf("name: big\nfilter: {cel: 'data.n > 1'}\ntarget: {grpc: %q}\n", fn))
	evs := []event.Event{newEvent("1", "t")} // data {"n":1}
	res, err := e.client.TestFilter(ctx, "big", evs)
	require.NoError(t, err)
	require.False(t, res.GetResults()[0].GetMatched())
	require.Equal(t, "evaluated to false", res.GetResults()[0].GetClauses()[0].GetReason())
	res, err = e.client.TestTriggerFilter(ctx, &switchyardv1.Trigger{Filter: &switchyardv1.Filter{Cel: "data.n == 1"},
		Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}}, evs)
	require.NoError(t, err)
	require.True(t, res.GetResults()[0].GetMatched())
	_, err = e.client.TestFilter(ctx, "nope", evs)
	require.Equal(t, codes.NotFound, status.Code(err))

	dry, err := e.client.DryRunApplyTrigger(ctx, &switchyardv1.Trigger{Name: "big", Description: "d", Filter: &switchyardv1.Filter{Cel: "data.n > 1"},
		Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}})
	require.NoError(t, err)
	require.True(t, dry.GetDryRun() && dry.GetChanged())
	got, err := e.client.GetTrigger(ctx, "big")
	require.NoError(t, err)
	require.Empty(t, got.GetDescription(), "nothing applied")
	require.True(t, proto.Equal(got, dry.GetPrevious()))
}
