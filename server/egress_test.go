package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/internal/secrets"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// triggerViolations returns the field paths of an InvalidTriggerError.
func triggerViolations(t *testing.T, err error) map[string]string {
	t.Helper()
	var ite *sdk.InvalidTriggerError
	require.ErrorAs(t, err, &ite)
	out := map[string]string{}
	for _, v := range ite.Violations {
		out[v.Field] = v.Description
	}
	return out
}

// With the egress guard on (loopback not exempt), the API refuses triggers
// aimed at denied literal addresses, naming the field; an allowlisted
// function and web target still receive their events; listings show URLs
// redacted while deliveries use the real one, and a redacted URL applied
// back is refused.
func TestEgressGuardThroughTheAPI(t *testing.T) {
	b := testenv.Embedded(t)
	rec := &received{}
	fnAddr := startFunction(t, recorder(rec))
	var mu sync.Mutex
	var queries []string
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer web.Close()
	webAddr := strings.TrimPrefix(web.URL, "http://")
	g, err := egress.New(egress.Config{AllowTargets: []string{fnAddr, webAddr}})
	require.NoError(t, err)
	e := startServer(t, b, func(c *server.Config) { c.Router.Outbound = delivery.Outbound{Guard: g} })
	ctx := context.Background()

	refused := map[string]trigger.Target{
		"trigger.target.grpc": {GRPC: "127.0.0.1:6379"},
		"trigger.target.url":  {URL: "http://169.254.169.254/latest/meta-data/"},
	}
	for path, target := range refused {
		_, err := e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "bad", Target: target}))
		v := triggerViolations(t, err)
		require.Contains(t, v, path, "%v", target)
	}
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "bad", Target: trigger.Target{URL: "http://[::ffff:127.0.0.1]:6379/"}}))
	require.Contains(t, triggerViolations(t, err)["trigger.target.url"], "loopback")

	e.apply(t, fmt.Sprintf(`
name: fn
filter: {attributes: {type: to-fn}}
target: {grpc: "%s"}
---
name: web
filter: {attributes: {type: to-web}}
target: {url: "%s/hook?token=s3cret-token&v=2"}
`, fnAddr, web.URL))
	require.NoError(t, e.client.Publish(ctx, newEvent("f1", "to-fn")))
	require.NoError(t, e.client.Publish(ctx, newEvent("w1", "to-web")))
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "the allowlisted function got its event")
	testenv.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(queries) == 1 }, "the web target got its event")
	mu.Lock()
	require.Equal(t, "token=s3cret-token&v=2", queries[0], "deliveries use the real URL")
	mu.Unlock()

	ts, err := e.client.ListTriggers(ctx)
	require.NoError(t, err)
	var listed string
	for _, tr := range ts {
		if tr.GetName() == "web" {
			listed = tr.GetTarget().GetUrl()
		}
	}
	require.Equal(t, web.URL+"/hook?token=REDACTED&v=REDACTED", listed)
	got, err := e.client.GetTrigger(ctx, "web")
	require.NoError(t, err)
	require.Equal(t, listed, got.GetTarget().GetUrl())
	_, err = e.client.ApplyTrigger(ctx, got)
	require.Contains(t, triggerViolations(t, err), "trigger.target.url", "a redacted URL applied back")
}

// With TLS required, plaintext targets are refused at apply time; and a
// trigger naming a secret the server does not hold is refused.
func TestRequireTargetTLSThroughTheAPI(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, func(c *server.Config) { c.Router.Outbound = delivery.Outbound{RequireTLS: true} })
	ctx := context.Background()
	_, err := e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{GRPC: "fn.example:7070"}}))
	require.Contains(t, triggerViolations(t, err)["trigger.target.grpc"], "grpcs://fn.example:7070")
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{URL: "http://fn.example/x"}}))
	require.Contains(t, triggerViolations(t, err), "trigger.target.url")
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{URL: "https://fn.example/x",
		Auth: &trigger.TargetAuth{SigningSecret: "hooks"}}}))
	require.Contains(t, triggerViolations(t, err), "trigger.target.auth.signing_secret")
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{GRPC: "grpcs://fn.example:443"}}))
	require.NoError(t, err)
	ts, err := e.client.ListTriggers(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
}

// Credentials end to end: a gRPC function served with RequireBearer and an
// HTTP function behind WebhookVerifier receive their events only with the
// trigger's secrets, which the server reads from SWITCHYARD_SECRET_*
// variables; a function expecting another token refuses, and the event is
// dead-lettered with UNAUTHENTICATED, the token nowhere in the dead letter.
func TestCredentialsForFunctions(t *testing.T) {
	const signing = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	t.Setenv("SWITCHYARD_SECRET_FN_TOKEN", "fn-t0ken-value")
	t.Setenv("SWITCHYARD_SECRET_HOOKS", signing)
	b := testenv.Embedded(t)
	rec := &received{}
	fnAddr := startFunctionWith(t, recorder(rec), function.RequireBearer("fn-t0ken-value")...)
	wrongAddr := startFunctionWith(t, recorder(&received{}), function.RequireBearer("another-token")...)

	v, err := function.NewWebhookVerifier(signing)
	require.NoError(t, err)
	var mu sync.Mutex
	var bodies []string
	web := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})))
	defer web.Close()

	e := startServer(t, b, func(c *server.Config) { c.Router.Outbound = delivery.Outbound{Secrets: secrets.Env{}} })
	e.apply(t, fmt.Sprintf(`
name: fn
filter: {attributes: {type: to-fn}}
target: {grpc: "%s", auth: {bearer_secret: fn-token}}
---
name: web
filter: {attributes: {type: to-web}}
target: {url: "%s/hook", auth: {signing_secret: hooks}}
---
name: wrong
filter: {attributes: {type: to-wrong}}
target: {grpc: "%s", auth: {bearer_secret: fn-token}}
`, fnAddr, web.URL, wrongAddr))
	ctx := context.Background()
	require.NoError(t, e.client.Publish(ctx, newEvent("f1", "to-fn")))
	require.NoError(t, e.client.Publish(ctx, newEvent("w1", "to-web")))
	require.NoError(t, e.client.Publish(ctx, newEvent("x1", "to-wrong")))
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "the function accepted the token")
	testenv.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) == 1 }, "the signature verified")
	mu.Lock()
	require.Equal(t, `{"n":1}`, bodies[0])
	mu.Unlock()

	var dls []*switchyardv1.DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := e.client.DeadLetters().ListDeadLetters(ctx, &switchyardv1.ListDeadLettersRequest{Trigger: "wrong"})
		require.NoError(t, err)
		dls = resp.GetDeadLetters()
		return len(dls) == 1
	}, "the refused delivery is dead-lettered")
	require.Equal(t, "UNAUTHENTICATED", dls[0].GetAttempts()[0].GetCode())
	raw, err := proto.Marshal(dls[0])
	require.NoError(t, err)
	require.NotContains(t, string(raw), "fn-t0ken-value")

	// The secret's name is in the trigger; its value is not, anywhere the
	// API shows.
	tr, err := e.client.GetTrigger(ctx, "fn")
	require.NoError(t, err)
	require.Equal(t, "fn-token", tr.GetTarget().GetAuth().GetBearerSecret())
	raw, err = proto.Marshal(tr)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "fn-t0ken-value")
}

// startFunctionWith serves h with opts on a random loopback port until the
// test ends.
func startFunctionWith(t *testing.T, h function.Handler, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = function.ServeListener(ctx, lis, h, opts...) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

// The guard is on without any Router.Outbound, as the binary runs: on a
// loopback server loopback targets are allowed and the metadata address
// is not; with loopback targets denied, only the allowlist opens a
// function on this machine; secrets come from SWITCHYARD_SECRET_* and the
// secrets directory.
func TestEgressFromServerConfig(t *testing.T) {
	ctx := context.Background()
	rec := &received{}
	fnAddr := startFunction(t, recorder(rec))
	apply := func(e *env, name string, target trigger.Target) error {
		_, err := e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: name, Filter: filter.Spec{Attributes: map[string]string{"type": name}}, Target: target}))
		return err
	}

	t.Run("quickstart", func(t *testing.T) {
		e := startServer(t, testenv.Embedded(t), nil)
		require.Contains(t, triggerViolations(t, apply(e, "meta", trigger.Target{URL: "http://169.254.169.254/latest/meta-data/"})), "trigger.target.url")
		require.NoError(t, apply(e, "local", trigger.Target{GRPC: fnAddr}))
		require.NoError(t, e.client.Publish(ctx, newEvent("q1", "local")))
		testenv.Eventually(t, 10*time.Second, func() bool { return func() bool { _, _, ok := rec.byID("q1"); return ok }() }, "a loopback function on a loopback server gets its event")
	})

	t.Run("loopback denied, function allowlisted", func(t *testing.T) {
		e := startServer(t, testenv.Embedded(t), func(c *server.Config) {
			c.Egress = server.EgressConfig{LoopbackTargets: server.LoopbackDeny, AllowTargets: []string{fnAddr}}
		})
		require.Contains(t, triggerViolations(t, apply(e, "redis", trigger.Target{GRPC: "127.0.0.1:6379"}))["trigger.target.grpc"], "loopback")
		require.NoError(t, apply(e, "allowed", trigger.Target{GRPC: fnAddr}))
		require.NoError(t, e.client.Publish(ctx, newEvent("a1", "allowed")))
		testenv.Eventually(t, 10*time.Second, func() bool { return func() bool { _, _, ok := rec.byID("a1"); return ok }() }, "the allowlisted function gets its event")
	})

	t.Run("secrets", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "fn-token"), []byte("t0ken\n"), 0o600))
		t.Setenv("SWITCHYARD_SECRET_FROM_ENV", "v")
		e := startServer(t, testenv.Embedded(t), func(c *server.Config) { c.Egress.SecretsDir = dir })
		for _, name := range []string{"fn-token", "from-env"} {
			require.NoError(t, apply(e, "s-"+name, trigger.Target{GRPC: fnAddr, Auth: &trigger.TargetAuth{BearerSecret: name}}), name)
		}
		require.Contains(t, triggerViolations(t, apply(e, "s-missing", trigger.Target{GRPC: fnAddr, Auth: &trigger.TargetAuth{BearerSecret: "missing"}})), "trigger.target.auth.bearer_secret")
	})
}
