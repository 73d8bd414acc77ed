package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

// adminToken is the bootstrap admin token of the servers these tests start.
const adminToken = "admin-0123456789abcdef0123456789abcdef"

// startAuthServer starts a server with authentication on (the bootstrap
// admin token; API keys in the test's Redis).
func startAuthServer(t *testing.T, b testenv.Backend, tweak func(*server.Config)) *env {
	t.Helper()
	return startServer(t, b, func(c *server.Config) {
		c.Auth.AdminToken = adminToken
		if tweak != nil {
			tweak(c)
		}
	})
}

// as returns a client of e's gRPC API presenting token.
func (e *env) as(t *testing.T, token string) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{Address: e.srv.GRPCAddr(), Token: token})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// key creates an API key through the TokenService, as the admin.
func (e *env) key(t *testing.T, name string, roles []string, scope *switchyardv1.TokenScope) string {
	t.Helper()
	res, err := e.as(t, adminToken).Tokens().CreateToken(context.Background(),
		&switchyardv1.CreateTokenRequest{Name: name, Roles: roles, Scope: scope})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(res.GetSecret(), "syk_"))
	return res.GetSecret()
}

// postAs posts body to path with token as the bearer ("" for none).
func (e *env) postAs(t *testing.T, token, path, contentType string, headers map[string]string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func (e *env) getAs(t *testing.T, token, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.http+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func requireCode(t *testing.T, err error, code codes.Code, contains string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	require.Equal(t, code, st.Code(), "%v", err)
	require.Contains(t, st.Message(), contains)
	return st
}

func binaryEvent(id, source, typ string) map[string]string {
	return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ}
}

func scopedEvent(id, source, typ string) event.Event {
	ev := newEvent(id, typ)
	ev.SetSource(source)
	return ev
}

// TestAuthenticationRequired: without a token, or with a bad one, every
// entry point but health checks refuses: 401 / UNAUTHENTICATED.
func TestAuthenticationRequired(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	anon := e.client // startServer's client has no token

	_, err := anon.ListTriggers(ctx)
	requireCode(t, err, codes.Unauthenticated, "no credentials")
	err = anon.Publish(ctx, newEvent("1", "t"))
	requireCode(t, err, codes.Unauthenticated, "")
	_, err = anon.DeadLetters().GetDeadLetterStats(ctx, &switchyardv1.GetDeadLetterStatsRequest{})
	requireCode(t, err, codes.Unauthenticated, "")
	_, err = anon.Tokens().ListTokens(ctx, &switchyardv1.ListTokensRequest{})
	requireCode(t, err, codes.Unauthenticated, "")
	_, err = e.as(t, "syk_aaaaaaaaaaaaaaaa_"+strings.Repeat("b", 52)).ListTriggers(ctx)
	requireCode(t, err, codes.Unauthenticated, "")
	_, err = e.as(t, "not-the-admin-token-0123456789abcdef").ListTriggers(ctx)
	requireCode(t, err, codes.Unauthenticated, "invalid bearer token")

	st, body, hdr := e.postAs(t, "", "/events", "application/json", binaryEvent("1", "/a", "t"), []byte(`{}`))
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "/problems/unauthenticated", body["type"])
	require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
	st, _, hdr = e.postAs(t, "wrong-token-0123456789abcdef0123456789", "/events", "application/json", binaryEvent("1", "/a", "t"), []byte(`{}`))
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`)
	require.Equal(t, http.StatusUnauthorized, e.getAs(t, "", "/metrics"))
	require.Equal(t, http.StatusUnauthorized, e.getAs(t, "", "/anything-else"))

	// Health checks stay open.
	require.Equal(t, http.StatusOK, e.getAs(t, "", "/healthz"))
	require.Equal(t, http.StatusOK, e.getAs(t, "", "/readyz"))
	conn, err := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())

	// Reflection is not served with authentication on.
	require.Equal(t, codes.Unimplemented, reflect(t, e.srv.GRPCAddr()))

	// The bootstrap admin gets in.
	_, err = e.as(t, adminToken).ListTriggers(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, e.getAs(t, adminToken, "/metrics"))
}

// TestRoles: what each role may do, and that a refusal changes nothing.
func TestRoles(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	fn := startFunction(t, (&failing{attempts: map[string][]int{}, n: -1, code: codes.InvalidArgument}).handle)
	admin := e.as(t, adminToken)
	_, err := admin.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "dead", Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}},
		Filter: &switchyardv1.Filter{Attributes: map[string]string{"type": "dead"}}})
	require.NoError(t, err)
	publisher := e.as(t, e.key(t, "publisher", []string{"publisher"}, nil))
	viewerKey := e.key(t, "viewer", []string{"viewer"}, nil)
	viewer := e.as(t, viewerKey)
	operator := e.as(t, e.key(t, "operator", []string{"operator"}, nil))

	// A publisher publishes, and may do nothing else.
	require.NoError(t, publisher.Publish(ctx, newEvent("d1", "dead")))
	_, err = publisher.DeleteTrigger(ctx, "dead", true)
	requireCode(t, err, codes.PermissionDenied, string(auth.PermTriggersWrite))
	_, err = publisher.ListTriggers(ctx)
	requireCode(t, err, codes.PermissionDenied, "")
	_, err = publisher.DeadLetters().ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{})
	requireCode(t, err, codes.PermissionDenied, "")
	_, err = admin.GetTrigger(ctx, "dead")
	require.NoError(t, err, "the refused delete changed nothing")

	// A viewer lists dead letters but cannot purge, replay or change.
	testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, viewer, "dead")) == 1 }, "dead-lettered")
	_, err = viewer.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "dead", All: true})
	requireCode(t, err, codes.PermissionDenied, string(auth.PermDeadLettersWrite))
	s, err := viewer.DeadLetters().ReplayDeadLetters(ctx, &switchyardv1.ReplayDeadLettersRequest{Trigger: "dead", All: true})
	if err == nil {
		_, err = s.Recv()
	}
	requireCode(t, err, codes.PermissionDenied, string(auth.PermDeadLettersWrite))
	_, err = viewer.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "x", Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}})
	requireCode(t, err, codes.PermissionDenied, "")
	err = viewer.Publish(ctx, newEvent("v1", "dead"))
	requireCode(t, err, codes.PermissionDenied, string(auth.PermPublish))
	_, err = viewer.Tokens().ListTokens(ctx, &switchyardv1.ListTokensRequest{})
	requireCode(t, err, codes.PermissionDenied, string(auth.PermTokensManage))
	require.Len(t, deadLetters(t, viewer, "dead"), 1, "the refused purge changed nothing")
	require.Equal(t, http.StatusOK, e.getAs(t, viewerKey, "/metrics"))
	st, body, _ := e.postAs(t, viewerKey, "/events", "application/json", binaryEvent("v2", "/a", "dead"), []byte(`{}`))
	require.Equal(t, http.StatusForbidden, st)
	require.Equal(t, "/problems/permission-denied", body["type"])

	// An operator purges, and cannot manage tokens or read the audit log.
	res, err := operator.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "dead", All: true})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.GetPurged())
	_, err = operator.Audit().ListAuditRecords(ctx, &switchyardv1.ListAuditRecordsRequest{})
	requireCode(t, err, codes.PermissionDenied, string(auth.PermAuditRead))
}

// TestTenantIsolation: tenant A's operator key sees, changes, replays and
// purges only A's triggers and dead letters; B's answer NOT_FOUND, exactly
// as missing ones do, and listings show only A's. A's trigger with an
// empty filter never receives B's events.
func TestTenantIsolation(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	dead := startFunction(t, (&failing{attempts: map[string][]int{}, n: -1, code: codes.InvalidArgument}).handle)
	recA, recB, recAll := &received{}, &received{}, &received{}
	fnA, fnB, fnAll := startFunction(t, recorder(recA)), startFunction(t, recorder(recB)), startFunction(t, recorder(recAll))
	a := e.as(t, e.key(t, "tenant-a", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"a-"}, Sources: []string{"/a/"}}))
	b := e.as(t, e.key(t, "tenant-b", []string{"operator"}, &switchyardv1.TokenScope{Triggers: []string{"b-"}, Sources: []string{"/b/"}}))
	pubA := e.as(t, e.key(t, "pub-a", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/a/"}}))
	pubB := e.as(t, e.key(t, "pub-b", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/b/"}}))
	admin := e.as(t, adminToken)
	grpcTarget := func(addr string) *switchyardv1.Target {
		return &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: addr}}
	}
	deadOnly := &switchyardv1.Filter{Attributes: map[string]string{"type": "dead"}}
	for _, c := range []struct {
		cl     *sdk.Client
		name   string
		target string
		filter *switchyardv1.Filter
	}{
		{a, "a-dead", dead, deadOnly}, {b, "b-dead", dead, deadOnly},
		{a, "a-all", fnA, nil}, {b, "b-all", fnB, nil}, {admin, "platform-all", fnAll, nil},
	} {
		res, err := c.cl.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: c.name, Target: grpcTarget(c.target), Filter: c.filter})
		require.NoError(t, err, c.name)
		if c.cl != admin {
			require.NotEmpty(t, res.GetTrigger().GetScope().GetSources(), "%s carries its creator's scope", c.name)
		}
	}
	require.NoError(t, pubA.Publish(ctx, scopedEvent("ea", "/a/shop", "dead")))
	require.NoError(t, pubB.Publish(ctx, scopedEvent("eb", "/b/bank", "dead")))
	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(deadLetters(t, admin, "a-dead")) == 1 && len(deadLetters(t, admin, "b-dead")) == 1
	}, "both tenants have a dead letter")
	bLetter := deadLetters(t, admin, "b-dead")[0].GetId()

	// Cross-tenant events: empty filters, yet each tenant gets its own.
	testenv.Eventually(t, 10*time.Second, func() bool { return recAll.count() == 2 && recA.count() == 1 && recB.count() == 1 }, "delivered")
	_, _, okA := recA.byID("ea")
	_, _, okB := recB.byID("eb")
	require.True(t, okA && okB, "each tenant's empty-filter trigger got its own event only")

	notFound := func(err error, what string) {
		t.Helper()
		requireCode(t, err, codes.NotFound, "not found")
		require.NotContains(t, status.Convert(err).Message(), "scope", what)
	}
	// Reads.
	_, err := a.GetTrigger(ctx, "b-dead")
	notFound(err, "get")
	_, errMissing := a.GetTrigger(ctx, "a-missing")
	require.Equal(t, strings.Replace(status.Convert(errMissing).Message(), "a-missing", "b-dead", 1), status.Convert(err).Message(),
		"another tenant's trigger answers exactly as a missing one")
	list, err := a.ListTriggers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a-all", "a-dead"}, names(list))
	stats, err := a.TriggerStats(ctx, "")
	require.NoError(t, err)
	require.Len(t, stats, 2)
	_, err = a.TriggerStats(ctx, "b-dead")
	notFound(err, "stats")
	// Changes.
	_, err = a.DeleteTrigger(ctx, "b-dead", true)
	notFound(err, "delete")
	_, err = a.Triggers().UpdateTrigger(ctx, &switchyardv1.UpdateTriggerRequest{Trigger: &switchyardv1.Trigger{Name: "b-dead", Target: grpcTarget(fnA)}})
	notFound(err, "update")
	_, err = a.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "b-dead", Target: grpcTarget(fnA)})
	st := requireCode(t, err, codes.PermissionDenied, `trigger.name "b-dead" is outside the scope`)
	require.Equal(t, "trigger.name", badRequestField(st))
	_, err = a.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "a-wide", Target: grpcTarget(fnA), Scope: &switchyardv1.EventScope{Sources: []string{"/b/"}}})
	requireCode(t, err, codes.PermissionDenied, "trigger.scope")
	narrow, err := a.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "a-narrow", Target: grpcTarget(fnA), Scope: &switchyardv1.EventScope{Sources: []string{"/a/x/"}}})
	require.NoError(t, err, "a scope inside the tenant's is kept")
	require.Equal(t, []string{"/a/x/"}, narrow.GetTrigger().GetScope().GetSources())
	// Dead letters.
	dls, err := a.DeadLetters().ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{})
	require.NoError(t, err)
	require.Len(t, dls.GetDeadLetters(), 1)
	require.Equal(t, "a-dead", dls.GetDeadLetters()[0].GetTrigger())
	_, err = a.DeadLetters().ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{Trigger: "b-dead"})
	notFound(err, "dlq list")
	_, err = a.DeadLetters().GetDeadLetter(ctx, &switchyardv1.GetDeadLetterRequest{Id: bLetter})
	notFound(err, "dlq show")
	for _, req := range []*switchyardv1.ReplayDeadLettersRequest{
		{Trigger: "b-dead", All: true},
		{Trigger: "a-dead", ToTrigger: "b-dead", All: true},
	} {
		s, err := a.DeadLetters().ReplayDeadLetters(ctx, req)
		if err == nil {
			_, err = s.Recv()
		}
		notFound(err, "replay")
	}
	_, err = a.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "b-dead", All: true})
	notFound(err, "purge")
	dstats, err := a.DeadLetters().GetDeadLetterStats(ctx, &switchyardv1.GetDeadLetterStatsRequest{})
	require.NoError(t, err)
	for _, q := range dstats.GetQueues() {
		require.True(t, strings.HasPrefix(q.GetTrigger(), "a-"), q.GetTrigger())
	}
	require.NotEmpty(t, dstats.GetQueues())

	// B's triggers and dead letters are untouched; A's own work.
	_, err = b.GetTrigger(ctx, "b-dead")
	require.NoError(t, err)
	require.Len(t, deadLetters(t, b, "b-dead"), 1)
	res, err := a.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "a-dead", All: true})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.GetPurged())

	// A tenant's publisher cannot publish as the other tenant.
	err = pubA.Publish(ctx, scopedEvent("ea2", "/b/forged", "dead"))
	requireCode(t, err, codes.PermissionDenied, `source "/b/forged"`)
}

func names(ts []*switchyardv1.Trigger) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.GetName())
	}
	return out
}

func badRequestField(st *status.Status) string {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

// TestPublishScope: a publish with one event outside the key's scope is
// refused whole (403 naming the attribute and index, PERMISSION_DENIED
// with the field), and nothing of it is accepted; the hop count needs the
// relay role, and an invalid one is a 400 for everyone.
func TestPublishScope(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e.apply2(t, e.as(t, adminToken), "all", fn)
	pubKey := e.key(t, "shop-pub", []string{"publisher"}, &switchyardv1.TokenScope{Sources: []string{"/shop/"}, Types: []string{"com.shop."}})
	relayKey := e.key(t, "relay", []string{"relay"}, nil)
	pub := e.as(t, pubKey)

	batch := `[{"specversion":"1.0","id":"b0","source":"/shop/eu","type":"com.shop.order"},
	           {"specversion":"1.0","id":"b1","source":"/shop/us","type":"com.shop.order"},
	           {"specversion":"1.0","id":"b2","source":"/bank/eu","type":"com.shop.order"}]`
	st, body, _ := e.postAs(t, pubKey, "/events", "application/cloudevents-batch+json", nil, []byte(batch))
	require.Equal(t, http.StatusForbidden, st)
	require.Contains(t, body["detail"], "events[2].source")
	errs := body["errors"].([]any)
	require.Len(t, errs, 1)
	d := errs[0].(map[string]any)
	require.EqualValues(t, 2, d["index"])
	require.Equal(t, "source", d["attribute"])
	require.Equal(t, "events[2].source", d["field"])

	st, body, _ = e.postAs(t, pubKey, "/events", "application/json", binaryEvent("t1", "/shop/eu", "org.other"), []byte(`{}`))
	require.Equal(t, http.StatusForbidden, st)
	require.Equal(t, "type", body["errors"].([]any)[0].(map[string]any)["attribute"])

	err := pub.PublishBatch(ctx, []event.Event{scopedEvent("g0", "/shop/a", "com.shop.x"), scopedEvent("g1", "/shop/b", "net.other")})
	st2 := requireCode(t, err, codes.PermissionDenied, "events[1].type")
	require.Equal(t, "events[1].type", badRequestField(st2))
	var info *errdetails.ErrorInfo
	for _, dt := range st2.Details() {
		if x, ok := dt.(*errdetails.ErrorInfo); ok {
			info = x
		}
	}
	require.NotNil(t, info)
	require.Equal(t, "PERMISSION_DENIED", info.GetReason())
	require.Equal(t, string(auth.PermPublish), info.GetMetadata()["permission"])

	// Hop count: a publisher may not set it (400: the event is invalid from
	// this publisher), a relay may; an invalid one is a 400 even for the
	// relay.
	hops := binaryEvent("h1", "/shop/eu", "com.shop.order")
	hops["Ce-Switchyardhops"] = "3"
	st, body, _ = e.postAs(t, pubKey, "/events", "application/json", hops, []byte(`{}`))
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, auth.HopsAttribute, body["errors"].([]any)[0].(map[string]any)["attribute"])
	st, _, _ = e.postAs(t, relayKey, "/events", "application/json", hops, []byte(`{}`))
	require.Equal(t, http.StatusAccepted, st)
	hops["Ce-Id"], hops["Ce-Switchyardhops"] = "h2", "-1"
	st, body, _ = e.postAs(t, relayKey, "/events", "application/json", hops, []byte(`{}`))
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, auth.HopsAttribute, body["errors"].([]any)[0].(map[string]any)["attribute"])

	// In scope: accepted. Only h1 and ok reach the function: nothing of the
	// refused calls was accepted.
	st, _, _ = e.postAs(t, pubKey, "/events", "application/json", binaryEvent("ok", "/shop/eu", "com.shop.order"), []byte(`{}`))
	require.Equal(t, http.StatusAccepted, st)
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 2 }, "delivered")
	for _, id := range []string{"h1", "ok"} {
		_, _, ok := rec.byID(id)
		require.True(t, ok, id)
	}
	stats, err := e.as(t, adminToken).TriggerStats(ctx, "all")
	require.NoError(t, err)
	require.EqualValues(t, 2, stats[0].GetEnqueued())
}

func (e *env) apply2(t *testing.T, c *sdk.Client, name, fn string) {
	t.Helper()
	_, err := c.ApplyTrigger(context.Background(), &switchyardv1.Trigger{Name: name, Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}})
	require.NoError(t, err)
}

// TestRevokedKeyRefusedBySecondReplica: a key revoked through one instance
// is refused by another on the same Redis within 2 s.
func TestRevokedKeyRefusedBySecondReplica(t *testing.T) {
	b := testenv.Real(t)
	e1 := startAuthServer(t, b, nil)
	e2 := startAuthServer(t, b, nil)
	ctx := context.Background()
	key := e1.key(t, "short-lived", []string{"viewer"}, nil)
	c2 := e2.as(t, key)
	_, err := c2.ListTriggers(ctx)
	require.NoError(t, err, "the key made on replica 1 works on replica 2")
	_, err = e1.as(t, adminToken).Tokens().RevokeToken(ctx, &switchyardv1.RevokeTokenRequest{Name: "short-lived"})
	require.NoError(t, err)
	revoked := time.Now()
	testenv.Eventually(t, 2*time.Second, func() bool {
		_, err := c2.ListTriggers(ctx)
		return status.Code(err) == codes.Unauthenticated
	}, "replica 2 refuses the revoked key")
	t.Logf("refused %v after the revocation", time.Since(revoked))
	_, err = e1.as(t, key).ListTriggers(ctx)
	requireCode(t, err, codes.Unauthenticated, "")
}

// TestTokenAPI: errors name the field; a scoped admin grants only inside
// its scope and sees only the keys it covers; a key's secret is never
// listed.
func TestTokenAPI(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	admin := e.as(t, adminToken).Tokens()
	_, err := admin.CreateToken(ctx, &switchyardv1.CreateTokenRequest{Name: "Bad Name", Roles: []string{"wizard"}})
	st := requireCode(t, err, codes.InvalidArgument, "name")
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	require.Equal(t, []string{"name", "roles[0]"}, fields)
	shopKey := e.key(t, "shop-admin", []string{"admin"}, &switchyardv1.TokenScope{Triggers: []string{"shop-"}})
	_, err = admin.CreateToken(ctx, &switchyardv1.CreateTokenRequest{Name: "shop-admin", Roles: []string{"viewer"}})
	requireCode(t, err, codes.AlreadyExists, "shop-admin")

	shop := e.as(t, shopKey).Tokens()
	_, err = shop.CreateToken(ctx, &switchyardv1.CreateTokenRequest{Name: "too-wide", Roles: []string{"viewer"}})
	requireCode(t, err, codes.PermissionDenied, "scope wider")
	res, err := shop.CreateToken(ctx, &switchyardv1.CreateTokenRequest{Name: "shop-viewer", Roles: []string{"viewer"},
		Scope: &switchyardv1.TokenScope{Triggers: []string{"shop-eu-"}}, Ttl: durationpbOf(time.Hour)})
	require.NoError(t, err)
	require.NotNil(t, res.GetToken().GetExpireTime())
	require.Equal(t, "shop-admin", res.GetToken().GetCreatedBy())

	all, err := admin.ListTokens(ctx, &switchyardv1.ListTokensRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetTokens(), 2)
	raw, _ := json.Marshal(all)
	require.NotContains(t, string(raw), strings.Split(shopKey, "_")[2], "the list never holds a secret")
	mine, err := shop.ListTokens(ctx, &switchyardv1.ListTokensRequest{})
	require.NoError(t, err)
	require.Len(t, mine.GetTokens(), 2, "its own key and the one it made lie inside its scope")

	viewerKey := e.key(t, "platform-viewer", []string{"viewer"}, nil)
	_, err = shop.RevokeToken(ctx, &switchyardv1.RevokeTokenRequest{Name: "platform-viewer"})
	requireCode(t, err, codes.NotFound, "platform-viewer")
	_, err = e.as(t, viewerKey).ListTriggers(ctx)
	require.NoError(t, err, "a refused revoke changes nothing")
	_, err = admin.RevokeToken(ctx, &switchyardv1.RevokeTokenRequest{Name: "nobody"})
	requireCode(t, err, codes.NotFound, "nobody")
}

// TestAuditTrail: every admin action writes one record, refusals
// included, with who, what, on what and the outcome; a scoped admin reads
// only its triggers' records.
func TestAuditTrail(t *testing.T) {
	e := startAuthServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	fn := startFunction(t, (&failing{attempts: map[string][]int{}, n: -1, code: codes.InvalidArgument}).handle)
	admin := e.as(t, adminToken)
	pubKey := e.key(t, "pub", []string{"publisher"}, nil) // token.create #1
	opKey := e.key(t, "shop-op", []string{"admin"}, &switchyardv1.TokenScope{Triggers: []string{"shop-"}})
	pub, op := e.as(t, pubKey), e.as(t, opKey)
	target := &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: fn}}

	_, err := op.Triggers().CreateTrigger(ctx, &switchyardv1.CreateTriggerRequest{Trigger: &switchyardv1.Trigger{Name: "shop-a", Target: target}})
	require.NoError(t, err)
	_, err = op.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "shop-a", Target: target, Description: "x"})
	require.NoError(t, err)
	_, err = op.Triggers().UpdateTrigger(ctx, &switchyardv1.UpdateTriggerRequest{Trigger: &switchyardv1.Trigger{Name: "shop-a", Target: target}})
	require.NoError(t, err)
	require.NoError(t, pub.Publish(ctx, newEvent("x1", "t")))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(deadLetters(t, op, "shop-a")) == 1 }, "dead-lettered")
	s, err := op.DeadLetters().ReplayDeadLetters(ctx, &switchyardv1.ReplayDeadLettersRequest{Trigger: "shop-a", All: true, DryRun: true})
	require.NoError(t, err)
	for {
		if _, err := s.Recv(); err != nil {
			break
		}
	}
	_, err = op.DeadLetters().PurgeDeadLetters(ctx, &switchyardv1.PurgeDeadLettersRequest{Trigger: "shop-a", All: true})
	require.NoError(t, err)
	_, err = pub.DeleteTrigger(ctx, "shop-a", false) // refused by the permission table
	requireCode(t, err, codes.PermissionDenied, "")
	_, err = op.DeleteTrigger(ctx, "other", false) // out of scope: NOT_FOUND, audited as denied
	requireCode(t, err, codes.NotFound, "")
	_, err = e.client.DeleteTrigger(ctx, "shop-a", false) // no credentials
	requireCode(t, err, codes.Unauthenticated, "")
	_, err = op.DeleteTrigger(ctx, "shop-a", true)
	require.NoError(t, err)
	_, err = admin.Tokens().RevokeToken(ctx, &switchyardv1.RevokeTokenRequest{Name: "pub"})
	require.NoError(t, err)

	res, err := admin.Audit().ListAuditRecords(ctx, &switchyardv1.ListAuditRecordsRequest{Limit: 1000})
	require.NoError(t, err)
	type rec struct{ subject, action, target, outcome string }
	var got []rec
	for _, r := range res.GetRecords() {
		got = append(got, rec{r.GetSubject(), r.GetAction(), r.GetTarget(), r.GetOutcome()})
		require.NotContains(t, r.GetDetail(), "syk_", "no credential in a record")
		require.NotEmpty(t, r.GetRemote())
		require.NotEmpty(t, r.GetMethod())
	}
	want := []rec{
		{"bootstrap-admin", auth.ActionTokenCreate, "pub", "ok"},
		{"bootstrap-admin", auth.ActionTokenCreate, "shop-op", "ok"},
		{"shop-op", auth.ActionTriggerCreate, "shop-a", "ok"},
		{"shop-op", auth.ActionTriggerApply, "shop-a", "ok"},
		{"shop-op", auth.ActionTriggerUpdate, "shop-a", "ok"},
		{"shop-op", auth.ActionDeadLetterReplay, "shop-a", "ok"},
		{"shop-op", auth.ActionDeadLetterPurge, "shop-a", "ok"},
		{"pub", auth.ActionTriggerDelete, "shop-a", "denied"},
		{"shop-op", auth.ActionTriggerDelete, "other", "denied"},
		{"", auth.ActionTriggerDelete, "shop-a", "denied"},
		{"shop-op", auth.ActionTriggerDelete, "shop-a", "ok"},
		{"bootstrap-admin", auth.ActionTokenRevoke, "pub", "ok"},
	}
	require.Equal(t, want, got)
	require.Contains(t, res.GetRecords()[6].GetDetail(), "purged 1")
	require.Contains(t, res.GetRecords()[5].GetDetail(), "dry run true")

	scoped, err := op.Audit().ListAuditRecords(ctx, &switchyardv1.ListAuditRecordsRequest{Limit: 1000})
	require.NoError(t, err)
	for _, r := range scoped.GetRecords() {
		require.True(t, strings.HasPrefix(r.GetTarget(), "shop-") && !strings.HasPrefix(r.GetAction(), "token."), "%v", r)
	}
	require.Len(t, scoped.GetRecords(), 8)
	latest, err := admin.Audit().ListAuditRecords(ctx, &switchyardv1.ListAuditRecordsRequest{Limit: 2})
	require.NoError(t, err)
	require.Len(t, latest.GetRecords(), 2)
	require.Equal(t, auth.ActionTokenRevoke, latest.GetRecords()[1].GetAction(), "the latest ones, oldest first")
}

// TestPushSourcesKeepTheirOwnVerification: a webhook source is reachable
// without a bearer token (it verifies its requests itself); the sources
// belong to the platform, so a scoped key lists none.
func TestPushSourcesKeepTheirOwnVerification(t *testing.T) {
	b := testenv.Real(t)
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
sources:
  - name: hooks
    kind: webhook
    fields: {type: com.example.hook, source: https://example.com/hooks, insecure: true}
`), 0o600))
	fc, err := server.LoadFile(file)
	require.NoError(t, err)
	e := startAuthServer(t, b, func(c *server.Config) { fc.Apply(c) })
	e.apply2(t, e.as(t, adminToken), "hooks", fn)
	testenv.Eventually(t, 10*time.Second, func() bool {
		st, _, _ := e.postAs(t, "", "/webhooks/hooks", "application/json", nil, []byte(`{"n":1}`))
		return st == http.StatusAccepted
	}, "webhook accepted without a bearer token")
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() >= 1 }, "delivered")
	ctx := context.Background()
	all, err := e.as(t, adminToken).Sources().ListSources(ctx, &switchyardv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetSources(), 1)
	scoped, err := e.as(t, e.key(t, "tenant", []string{"viewer"}, &switchyardv1.TokenScope{Triggers: []string{"t-"}})).
		Sources().ListSources(ctx, &switchyardv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Empty(t, scoped.GetSources())
}

// TestAuthenticationOffKeepsEverythingOpen: with no identity configured,
// every caller is the anonymous admin (the existing suite relies on it),
// the server binds loopback by default, and reflection is served.
func TestAuthenticationOffKeepsEverythingOpen(t *testing.T) {
	e := startServer(t, testenv.Real(t), nil)
	ctx := context.Background()
	fn := startFunction(t, recorder(&received{}))
	e.apply2(t, e.client, "open", fn)
	_, err := e.client.Tokens().CreateToken(ctx, &switchyardv1.CreateTokenRequest{Name: "inert", Roles: []string{"viewer"}})
	require.NoError(t, err, "keys may be made ahead of turning authentication on")
	res, err := e.client.Audit().ListAuditRecords(ctx, &switchyardv1.ListAuditRecordsRequest{})
	require.NoError(t, err)
	require.Equal(t, "anonymous", res.GetRecords()[0].GetSubject())
	require.Equal(t, http.StatusOK, e.getAs(t, "", "/metrics"))
	require.Equal(t, codes.OK, reflect(t, e.srv.GRPCAddr()), "reflection is served without authentication")
}

// reflect lists the services through server reflection, without
// credentials, and returns the code of the answer.
func reflect(t *testing.T, addr string) codes.Code {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	s, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err == nil {
		// A Send the server already refused fails with io.EOF; the status
		// is Recv's, either way.
		_ = s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = s.Recv()
	}
	return status.Code(err)
}

func durationpbOf(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
