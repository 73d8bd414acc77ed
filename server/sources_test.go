package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/switchyard-io/switchyard/connectors"
	_ "github.com/switchyard-io/switchyard/connectors/all"
	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/server"
)

func TestWebhookSourceFromConfigFile(t *testing.T) {
	b := testenv.Embedded(t)
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	dir := t.TempDir()
	t.Setenv("HOOK_SECRET", "") // no signature for this test
	file := filepath.Join(dir, "switchyard.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
sources:
  - name: hooks
    kind: webhook
    fields:
      type: com.example.hook
      source: https://example.com/hooks
      secret: "${HOOK_SECRET}"
      insecure: true
`), 0o600))
	fc, err := server.LoadFile(file)
	require.NoError(t, err)
	e := startServer(t, b, func(c *server.Config) { fc.Apply(c) })
	e.apply(t, fmt.Sprintf(`{"name":"hooks","filter":{"attributes":{"type":"com.example.hook"}},"target":{"grpc":"%s"}}`, fn))
	body := []byte(`{"order": 7,  "ok": true}`)
	var status int
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Post(e.http+"/webhooks/hooks", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == http.StatusAccepted
	}, "webhook accepted (last status %d)", status)
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "delivered")
	require.Equal(t, body, rec.events[0].Data())
	require.Equal(t, "https://example.com/hooks", rec.events[0].Source())
	res, err := e.client.Sources().ListSources(context.Background(), &switchyardv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Len(t, res.GetSources(), 1)
	require.Equal(t, "running", res.GetSources()[0].GetState())
	require.EqualValues(t, 1, res.GetSources()[0].GetEvents())
}

func TestBadSourceConfigFailsStartNamingTheField(t *testing.T) {
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Sources: []connectors.SourceConfig{
		{Name: "a", Kind: "webhook", Fields: map[string]any{"max_body_bytes": "big", "bogus": 1}},
		{Name: "b", Kind: "nope"},
	}}
	err := server.Check(cfg)
	require.Error(t, err)
	for _, want := range []string{"sources[0].fields.max_body_bytes", "sources[0].fields.bogus", "sources[1].kind"} {
		require.True(t, strings.Contains(err.Error(), want), "%q in %v", want, err)
	}
	_, err = server.New(context.Background(), cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "sources[0].fields.max_body_bytes")
}

func TestUnreachableSourceKeepsRetryingWithoutStoppingTheServer(t *testing.T) {
	b := testenv.Embedded(t)
	e := startServer(t, b, func(c *server.Config) {
		c.Sources = []connectors.SourceConfig{{Name: "far", Kind: "redis_streams", Fields: map[string]any{"url": "redis://127.0.0.1:1/0", "stream": "orders"}}}
	})
	testenv.Eventually(t, 10*time.Second, func() bool {
		res, err := e.client.Sources().ListSources(context.Background(), &switchyardv1.ListSourcesRequest{})
		return err == nil && len(res.GetSources()) == 1 && res.GetSources()[0].GetErrors() > 0 && res.GetSources()[0].GetLastError() != ""
	}, "the source reports why it cannot connect")
	res, err := e.client.Sources().ListSources(context.Background(), &switchyardv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Equal(t, "connecting", res.GetSources()[0].GetState())
	require.Contains(t, res.GetSources()[0].GetLastError(), "connect")
	// The server still serves.
	require.NoError(t, e.client.Publish(context.Background(), newEvent("still-up", "x")))
}

// syncBuf collects log output written from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// cdcAndHook are two sources that confirm what they read: a replication
// slot (upstream) and a webhook (its caller).
func cdcAndHook() []connectors.SourceConfig {
	return []connectors.SourceConfig{
		{Name: "shop-db", Kind: "postgres", Fields: map[string]any{"dsn": "postgres://postgres@127.0.0.1:1/shop", "tables": []any{"public.orders"}}},
		{Name: "hooks", Kind: "webhook", Fields: map[string]any{"insecure": true}},
	}
}

func TestVolatileSourcesRefusedOnTheEmbeddedStore(t *testing.T) {
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Sources: cdcAndHook(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	check := server.Check(cfg)
	_, start := server.New(context.Background(), cfg)
	for name, err := range map[string]error{"Check": check, "New": start} {
		require.ErrorIs(t, err, server.ErrVolatileSource, name)
		for _, want := range []string{
			`sources[0] "shop-db" (postgres)`, "the replication slot's confirmed LSN has moved past them",
			`sources[1] "hooks" (webhook)`, "requests answered 202",
			"redis_url", "allow_volatile_sources: true (--allow-volatile-sources)",
		} {
			require.Contains(t, err.Error(), want, name)
		}
	}
	// With a Redis, nothing is at risk.
	cfg.RedisURL = testenv.RedisURL()
	require.NoError(t, server.Check(cfg))
}

func TestVolatileSourcesRunWhenAllowedAndSaySo(t *testing.T) {
	logs := &syncBuf{}
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Sources: cdcAndHook(), AllowVolatileSources: true,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	require.NoError(t, server.Check(cfg))
	s, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	var warned []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), "volatile source") {
			warned = append(warned, m)
		}
	}
	// Check and New each say it once per source.
	require.Len(t, warned, 4, logs.String())
	for _, w := range warned[2:] {
		require.Equal(t, "WARN", w["level"])
	}
	require.Equal(t, "shop-db", warned[2]["source"])
	require.Equal(t, "upstream", warned[2]["confirms"])
	require.Contains(t, warned[2]["loses"], "row changes accepted but not yet delivered")
	require.Equal(t, "hooks", warned[3]["source"])
	require.Equal(t, "caller", warned[3]["confirms"])
	require.Contains(t, warned[3]["loses"], "requests answered 202")
	// The webhook runs: once connected, it accepts.
	var status int
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Post("http://"+s.HTTPAddr()+"/webhooks/hooks", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == http.StatusAccepted
	}, "webhook accepted (last status %d)", status)
}

func TestSourceThatConfirmsNothingRunsOnTheEmbeddedStore(t *testing.T) {
	reg := connectors.NewRegistry()
	require.NoError(t, reg.Register(connectors.Spec{Kind: "replayable", Summary: "reads everything again after a restart",
		Confirms: connectors.ConfirmsNothing,
		New:      func(connectors.Env, connectors.Config) (connectors.Source, error) { return endless{}, nil }}))
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Connectors: reg,
		Sources: []connectors.SourceConfig{{Name: "r", Kind: "replayable"}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, server.Check(cfg))
	s, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(context.Background()))
}

// endless is a source with nothing to read.
type endless struct{}

func (endless) Connect(context.Context) error { return nil }
func (endless) Read(ctx context.Context) (*connectors.Message, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (endless) Close(context.Context) error { return nil }

// Check builds every source to validate it, including those that keep their
// position in the store's checkpoints (serve runs Check before serving, so a
// failure here stops the server).
func TestCheckBuildsSourcesThatKeepCheckpoints(t *testing.T) {
	cfg := server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", RedisURL: testenv.RedisURL(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sources: []connectors.SourceConfig{{Name: "files", Kind: "directory", Fields: map[string]any{"path": t.TempDir()}}}}
	require.NoError(t, server.Check(cfg))
}
