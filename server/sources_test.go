package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
