package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/delivery"
	"github.com/switchyard-io/switchyard/router/delivery/egress"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

// violations returns the field paths of an InvalidTriggerError.
func violations(t *testing.T, err error) map[string]string {
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
		v := violations(t, err)
		require.Contains(t, v, path, "%v", target)
	}
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "bad", Target: trigger.Target{URL: "http://[::ffff:127.0.0.1]:6379/"}}))
	require.Contains(t, violations(t, err)["trigger.target.url"], "loopback")

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
	require.Contains(t, violations(t, err), "trigger.target.url", "a redacted URL applied back")
}

// With TLS required, plaintext targets are refused at apply time; and a
// trigger naming a secret the server does not hold is refused.
func TestRequireTargetTLSThroughTheAPI(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, func(c *server.Config) { c.Router.Outbound = delivery.Outbound{RequireTLS: true} })
	ctx := context.Background()
	_, err := e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{GRPC: "fn.example:7070"}}))
	require.Contains(t, violations(t, err)["trigger.target.grpc"], "grpcs://fn.example:7070")
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{URL: "http://fn.example/x"}}))
	require.Contains(t, violations(t, err), "trigger.target.url")
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{URL: "https://fn.example/x",
		Auth: &trigger.TargetAuth{SigningSecret: "hooks"}}}))
	require.Contains(t, violations(t, err), "trigger.target.auth.signing_secret")
	_, err = e.client.ApplyTrigger(ctx, trigger.ToProto(trigger.Spec{Name: "a", Target: trigger.Target{GRPC: "grpcs://fn.example:443"}}))
	require.NoError(t, err)
	ts, err := e.client.ListTriggers(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
}
