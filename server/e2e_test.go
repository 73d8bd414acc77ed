package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// received records what a function endpoint got.
type received struct {
	mu     sync.Mutex
	events []event.Event
	infos  []function.Info
}

func (r *received) add(ev event.Event, info function.Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	r.infos = append(r.infos, info)
}

func (r *received) byID(id string) (event.Event, function.Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.ID() == id {
			return ev, r.infos[i], true
		}
	}
	return event.Event{}, function.Info{}, false
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// startFunction serves h on a random loopback port until the test ends.
func startFunction(t *testing.T, h function.Handler) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = function.ServeListener(ctx, lis, h) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

func recorder(rec *received) function.Handler {
	return func(ctx context.Context, ev event.Event) (function.Result, error) {
		info, _ := function.FromContext(ctx)
		rec.add(ev, info)
		return function.Result{}, nil
	}
}

type env struct {
	srv    *server.Server
	client *sdk.Client
	http   string
}

func startServer(t *testing.T, b testenv.Backend, tweak func(*server.Config)) *env {
	t.Helper()
	cfg := server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Router: router.Config{Prefix: b.Prefix, SweepInterval: 100 * time.Millisecond, BreakerCooldown: 100 * time.Millisecond},
	}
	if b.Mini == nil {
		cfg.RedisURL = b.URL
	} else {
		cfg.RedisURL = b.URL // the test's own miniredis, shared with the test
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx := context.Background()
	s, err := server.New(ctx, cfg)
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := sdk.New(sdk.Config{Address: s.GRPCAddr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &env{srv: s, client: c, http: "http://" + s.HTTPAddr()}
}

func (e *env) apply(t *testing.T, yaml string) {
	t.Helper()
	specs, err := trigger.Parse([]byte(yaml))
	require.NoError(t, err)
	for _, s := range specs {
		_, err := e.client.ApplyTrigger(context.Background(), trigger.ToProto(s))
		require.NoError(t, err)
	}
}

func (e *env) post(t *testing.T, contentType string, headers map[string]string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http+"/events", bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestCorePathAllModes(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		rec := &received{}
		fn := startFunction(t, recorder(rec))
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: orders-to-billing
filter:
  attributes: {type: com.example.order.created}
  prefix: {source: /shop/}
  cel: "data.total > 100"
target:
  grpc: %s
delivery:
  max_concurrency: 4
`, fn))
		// Binary mode, with odd whitespace in the JSON data and an extension.
		binData := []byte("{ \"total\" :  150,\n \"x\":[1, 2] }")
		st, _ := e.post(t, "application/json", map[string]string{
			"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "/shop/eu", "ce-type": "com.example.order.created",
			"ce-subject": "eu-42", "ce-tenant": "acme",
		}, binData)
		require.Equal(t, http.StatusAccepted, st)
		// Structured mode.
		st, _ = e.post(t, "application/cloudevents+json", nil, []byte(`{"specversion":"1.0","id":"str-1","source":"/shop/us","type":"com.example.order.created","datacontenttype":"application/json","data":{"total":  101}}`))
		require.Equal(t, http.StatusAccepted, st)
		// Batch mode: one matches, one does not (total too small), one has another type.
		st, body := e.post(t, "application/cloudevents-batch+json", nil, []byte(`[
 {"specversion":"1.0","id":"bat-1","source":"/shop/x","type":"com.example.order.created","data":{"total":500}},
 {"specversion":"1.0","id":"bat-2","source":"/shop/x","type":"com.example.order.created","data":{"total":5}},
 {"specversion":"1.0","id":"bat-3","source":"/shop/x","type":"com.example.other","data":{"total":500}}]`))
		require.Equal(t, http.StatusAccepted, st)
		require.EqualValues(t, 3, body["accepted"])
		require.EqualValues(t, 1, body["routed"])
		// SDK.
		ev := event.New()
		ev.SetID("sdk-1")
		ev.SetSource("/shop/sdk")
		ev.SetType("com.example.order.created")
		ev.SetExtension("tenant", "globex")
		require.NoError(t, ev.SetData("application/json", json.RawMessage(`{"total":1000}`)))
		require.NoError(t, e.client.Publish(context.Background(), ev))

		testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() >= 4 }, "4 deliveries, have %d", rec.count())
		got, info, ok := rec.byID("bin-1")
		require.True(t, ok)
		require.Equal(t, binData, got.Data(), "data byte-exact")
		require.Equal(t, "eu-42", got.Subject())
		require.Equal(t, "acme", got.Extensions()["tenant"])
		require.Equal(t, "application/json", got.DataContentType())
		require.Equal(t, "orders-to-billing", info.Trigger)
		require.Equal(t, 1, info.Attempt)
		require.Equal(t, "/shop/eu bin-1", info.IdempotencyKey)
		for _, id := range []string{"str-1", "bat-1", "sdk-1"} {
			_, _, ok := rec.byID(id)
			require.True(t, ok, id)
		}
		// Nothing else arrives.
		time.Sleep(300 * time.Millisecond)
		require.Equal(t, 4, rec.count())
		for _, id := range []string{"bat-2", "bat-3"} {
			_, _, ok := rec.byID(id)
			require.False(t, ok, id)
		}
		stats, err := e.client.TriggerStats(context.Background(), "orders-to-billing")
		require.NoError(t, err)
		require.EqualValues(t, 4, stats[0].GetDelivered())
		require.EqualValues(t, 0, stats[0].GetQueued())
	})
}

func TestIngestErrors(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, func(c *server.Config) { c.Limits.MaxEventBytes = 4096 })
	e.apply(t, `{"name":"all","target":{"grpc":"127.0.0.1:1"}}`)
	valid := `{"specversion":"1.0","id":"1","source":"/s","type":"t"}`
	cases := map[string]struct {
		ct      string
		headers map[string]string
		body    string
		status  int
		contain string
	}{
		"malformed json":         {ct: "application/cloudevents+json", body: `{"specversion":`, status: 400, contain: "malformed"},
		"missing source":         {ct: "application/cloudevents+json", body: `{"specversion":"1.0","id":"1","type":"t"}`, status: 400, contain: "source"},
		"bad specversion":        {ct: "application/cloudevents+json", body: `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, status: 400, contain: "specversion"},
		"binary missing id":      {ct: "text/plain", headers: map[string]string{"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, body: "x", status: 400, contain: "id"},
		"not a cloudevent":       {ct: "application/json", body: `{"a":1}`, status: 400, contain: "specversion"},
		"unsupported media type": {ct: "application/cloudevents+xml", body: `<x/>`, status: 415},
		"too large":              {ct: "application/cloudevents+json", body: `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"` + strings.Repeat("a", 5000) + `"}`, status: 413},
		"bad event in batch":     {ct: "application/cloudevents-batch+json", body: `[` + valid + `,{"specversion":"1.0","id":"2","type":"t"}]`, status: 400, contain: "[1]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st, body := e.post(t, tc.ct, tc.headers, []byte(tc.body))
			require.Equal(t, tc.status, st, "%v", body)
			require.Equal(t, float64(tc.status), body["status"], "problem JSON carries the status")
			require.NotEmpty(t, body["type"])
			require.NotEmpty(t, body["title"])
			if tc.contain != "" {
				js, _ := json.Marshal(body)
				require.Contains(t, string(js), tc.contain)
			}
		})
	}
	// Nothing of the bad batch was accepted: the queue is empty.
	stats, err := e.client.TriggerStats(context.Background(), "all")
	require.NoError(t, err)
	require.EqualValues(t, 0, stats[0].GetEnqueued()+stats[0].GetQueued()+stats[0].GetInFlight()+stats[0].GetRetriesScheduled())
	// Wrong method.
	resp, err := http.Get(e.http + "/events")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// An empty batch is valid in the CloudEvents JSON format (the conformance
// case validBatchEmpty): it is answered 202 with nothing accepted, and
// nothing is written.
func TestIngestEmptyBatch(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		e := startServer(t, b, nil)
		e.apply(t, `{"name":"all","target":{"grpc":"127.0.0.1:1"}}`)
		for _, body := range []string{"[]", " [\n] "} {
			st, out := e.post(t, "application/cloudevents-batch+json", nil, []byte(body))
			require.Equal(t, http.StatusAccepted, st, "%q: %v", body, out)
			require.EqualValues(t, 0, out["accepted"])
			require.EqualValues(t, 0, out["routed"])
		}
		stats, err := e.client.TriggerStats(context.Background(), "all")
		require.NoError(t, err)
		require.EqualValues(t, 0, stats[0].GetEnqueued()+stats[0].GetQueued()+stats[0].GetInFlight()+stats[0].GetRetriesScheduled())
		// The same route still refuses a batch that is not one.
		st, _ := e.post(t, "application/cloudevents-batch+json", nil, []byte("[1]"))
		require.Equal(t, http.StatusBadRequest, st)
	})
}

func TestTriggerAPIErrors(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, nil)
	ctx := context.Background()
	bad := trigger.ToProto(trigger.Spec{Name: "Bad Name", Target: trigger.Target{}, Delivery: trigger.Delivery{MaxAttempts: -1}})
	bad.Filter = &switchyardv1.Filter{Cel: "data.total >", Cesql: "subject LIKEE 'x'"}
	_, err := e.client.ApplyTrigger(ctx, bad)
	require.Error(t, err)
	var ite *sdk.InvalidTriggerError
	require.ErrorAs(t, err, &ite)
	fields := map[string]bool{}
	for _, v := range ite.Violations {
		fields[v.Field] = true
	}
	for _, f := range []string{"trigger.name", "trigger.target", "trigger.delivery.max_attempts", "trigger.filter.cel", "trigger.filter.cesql"} {
		require.True(t, fields[f], "violation for %s in %v", f, ite.Violations)
	}
	_, err = e.client.GetTrigger(ctx, "nope")
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = e.client.DeleteTrigger(ctx, "nope", false)
	require.Equal(t, codes.NotFound, status.Code(err))
	ts, err := e.client.ListTriggers(ctx)
	require.NoError(t, err)
	require.Empty(t, ts, "the refused trigger left nothing behind")
}
