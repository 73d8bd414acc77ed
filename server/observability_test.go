package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard-io/switchyard/connectors"
	_ "github.com/switchyard-io/switchyard/connectors/directory" // the directory source
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/server"
)

// logBuffer collects JSON log lines from concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// find returns the lines whose msg is msg.
func (l *logBuffer) find(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		m := map[string]any{}
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Every HTTP and gRPC call has a request id: the caller's when it is safe,
// else a new one; it comes back in the answer and is in the call's log
// lines.
func TestRequestIDs(t *testing.T) {
	var logs logBuffer
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	get := func(id string) string {
		req, err := http.NewRequest(http.MethodGet, e.http+"/healthz", nil)
		require.NoError(t, err)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Request-Id")
	}
	require.Equal(t, "client-chose-1", get("client-chose-1"))
	made := get("")
	require.Regexp(t, `^[0-9a-f]{24}$`, made)
	replaced := get("not safe; to log")
	require.Regexp(t, `^[0-9a-f]{24}$`, replaced)
	ids := map[string]bool{}
	testenv.Eventually(t, 5*time.Second, func() bool {
		for _, l := range logs.find(t, "http request") {
			if l["path"] == "/healthz" {
				ids[l["request_id"].(string)] = true
			}
		}
		return len(ids) == 3
	}, "a line per call")
	require.Equal(t, map[string]bool{"client-chose-1": true, made: true, replaced: true}, ids)

	conn, err := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	tc := switchyardv1.NewTriggerServiceClient(conn)
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "grpc-chose-1")
	_, err = tc.ListTriggers(ctx, &switchyardv1.ListTriggersRequest{}, grpc.Header(&hdr))
	require.NoError(t, err)
	require.Equal(t, []string{"grpc-chose-1"}, hdr.Get("x-request-id"))
	_, err = tc.GetTrigger(t.Context(), &switchyardv1.GetTriggerRequest{Name: "missing"}, grpc.Header(&hdr))
	require.Error(t, err)
	made = hdr.Get("x-request-id")[0]
	require.Regexp(t, `^[0-9a-f]{24}$`, made)
	calls := map[string]map[string]any{}
	testenv.Eventually(t, 5*time.Second, func() bool {
		for _, l := range logs.find(t, "grpc call") {
			calls[l["request_id"].(string)] = l
		}
		return calls["grpc-chose-1"] != nil && calls[made] != nil
	}, "a line per call")
	require.Equal(t, "/switchyard.v1.TriggerService/ListTriggers", calls["grpc-chose-1"]["method"])
	require.Equal(t, "NotFound", calls[made]["code"])
}

// /metrics shows the sources (counts, state, lag) and the triggers' series,
// and a deleted trigger's series are gone from the next scrape.
func TestMetricsEndpoint(t *testing.T) {
	b := testenv.Real(t)
	dir := t.TempDir()
	e := startServer(t, b, func(c *server.Config) {
		c.Sources = []connectors.SourceConfig{{Name: "files", Kind: "directory", Fields: map[string]any{"path": dir}}}
		c.Router.Metrics = router.MetricsConfig{StoreReadTTL: -1}
	})
	e.apply(t, `
name: watched
filter: {attributes: {type: never.sent}}
target: {grpc: "127.0.0.1:1"}
`)
	scrape := func() string {
		resp, err := http.Get(e.http + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o600))
	var body string
	testenv.Eventually(t, 15*time.Second, func() bool {
		body = scrape()
		return strings.Contains(body, `switchyard_source_events_total{kind="directory",source="files"} 1`)
	}, "the file's event counted")
	for _, want := range []string{
		`switchyard_source_state{kind="directory",source="files",state="running"} 1`,
		`switchyard_source_state{kind="directory",source="files",state="retrying"} 0`,
		`switchyard_source_errors_total{kind="directory",source="files"} 0`,
		`switchyard_source_invalid_total{kind="directory",source="files"} 0`,
		`switchyard_source_lag_seconds{kind="directory",source="files"} `,
		`switchyard_source_last_event_timestamp_seconds{kind="directory",source="files"} `,
		`switchyard_trigger_ready{trigger="watched"} 0`,
		`switchyard_trigger_max_concurrency{trigger="watched"} 64`,
		`switchyard_store_up 1`,
		`switchyard_ready 1`,
		`switchyard_triggers 1`,
		`switchyard_events_accepted_total 1`,
		`switchyard_redis_errors_total 0`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "switchyard_source_backlog{", "the directory says nothing of a backlog")
	_, err := e.client.DeleteTrigger(t.Context(), "watched", true)
	require.NoError(t, err)
	body = scrape()
	require.NotContains(t, body, `trigger="watched"`)
	require.Contains(t, body, `switchyard_triggers 0`)
}

// The OpenMetrics exposition is served to a scraper that asks for it (the
// format that carries exemplars).
func TestMetricsOpenMetrics(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), nil)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.http+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/openmetrics-text")
	require.True(t, strings.HasSuffix(string(body), "# EOF\n"))
}
