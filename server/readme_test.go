package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// heredoc returns the text of the here-document `<<'TAG'` started by the
// line starting with opener in a shell block.
func heredoc(t *testing.T, block, opener, tag string) string {
	t.Helper()
	_, after, ok := strings.Cut(block, opener)
	require.True(t, ok, "%q in %s", opener, block)
	_, after, _ = strings.Cut(after, "\n")
	body, _, ok := strings.Cut(after, "\n"+tag+"\n")
	require.True(t, ok, "end of %s here-document", tag)
	return body + "\n"
}

func loadREADMEConfig(t *testing.T, yaml string) server.FileConfig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	fc, err := server.LoadFile(path)
	require.NoError(t, err)
	return fc
}

// TestREADMEConfigsAreValid checks the configuration files the README
// shows, and that its CDC example would be refused without its redis_url.
func TestREADMEConfigsAreValid(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "s3cret")
	var cfg server.Config
	loadREADMEConfig(t, testenv.READMEBlock(t, "sources-config")).Apply(&cfg)
	require.NoError(t, server.Check(cfg))

	cdc := testenv.READMEBlock(t, "cdc")
	for _, step := range []string{"createdb -h 127.0.0.1 -U postgres shop\n", "create table orders (id serial primary key, total int not null"} {
		require.Contains(t, cdc, step)
	}
	file := heredoc(t, cdc, "cat > switchyard.yaml", "YAML")
	cfg = server.Config{}
	loadREADMEConfig(t, file).Apply(&cfg)
	require.NotEmpty(t, cfg.RedisURL, "the CDC example runs on Redis")
	require.NoError(t, server.Check(cfg))
	cfg = server.Config{}
	loadREADMEConfig(t, strings.ReplaceAll(file, "redis_url:", "# redis_url:")).Apply(&cfg)
	require.ErrorIs(t, server.Check(cfg), server.ErrVolatileSource)
	_, err := trigger.Parse([]byte(heredoc(t, cdc, "./switchyard trigger apply -f -", "YAML")))
	require.NoError(t, err)
}

// TestREADMESignedWebhookCurl runs the README's signed curl (bash, openssl,
// curl) against a server configured with the README's webhook source.
func TestREADMESignedWebhookCurl(t *testing.T) {
	const secret = "0123456789abcdef-readme"
	t.Setenv("GITHUB_WEBHOOK_SECRET", secret)
	fc := loadREADMEConfig(t, testenv.READMEBlock(t, "sources-config"))
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) { fc.Apply(c) })
	e.apply(t, fmt.Sprintf(`{"name":"github","filter":{"attributes":{"type":"com.switchyard.webhook"}},"target":{"grpc":"%s"}}`, fn))
	// Wait until the source runs: an unsigned request is then refused.
	var status int
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Post(e.http+"/webhooks/github", "application/json", strings.NewReader(`{}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == http.StatusUnauthorized
	}, "webhook source running (last status %d)", status)

	script := strings.ReplaceAll(testenv.READMEBlock(t, "webhook-curl"), "localhost:8080", strings.TrimPrefix(e.http, "http://"))
	curl := func(secret string) string {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+secret)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Run(), out.String())
		return out.String()
	}
	out := curl(secret)
	require.Contains(t, out, "HTTP/1.1 202", out)
	require.Contains(t, out, `{"id":"72d3162e-cc78-11e3-81ab-4c9367dc0958"}`)
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.count() == 1 }, "delivered")
	ev, _, ok := rec.byID("72d3162e-cc78-11e3-81ab-4c9367dc0958")
	require.True(t, ok)
	require.Equal(t, `{"action":"opened","number":7}`, string(ev.Data()))
	// Signed with another secret: refused, nothing stored.
	out = curl("not-the-secret")
	require.Contains(t, out, "HTTP/1.1 401", out)
	require.Equal(t, 1, rec.count())
}

// TestREADMEPublishAnswers checks what the quickstart says about answers:
// routed counts, curl -d without a JSON content type, 400 versus 415.
func TestREADMEPublishAnswers(t *testing.T) {
	rec := &received{}
	fn := startFunction(t, recorder(rec))
	e := startServer(t, testenv.Embedded(t), nil)
	e.apply(t, strings.ReplaceAll(testenv.READMEBlock(t, "quickstart-trigger"), "127.0.0.1:7070", fn))
	binary := map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/shop/eu", "ce-type": "com.example.order.created", "ce-subject": "eu-42"}
	for name, tc := range map[string]struct {
		ct      string
		headers map[string]string
		body    string
		status  int
		routed  float64
		contain string
	}{
		"json data":                      {ct: "application/json", headers: binary, body: `{"total": 150}`, status: 202, routed: 1},
		"curl -d without a content type": {ct: "application/x-www-form-urlencoded", headers: binary, body: `{"total": 150}`, status: 202, routed: 0},
		"batch, one event matching": {ct: "application/cloudevents-batch+json", status: 202, routed: 1, body: `[
			{"specversion":"1.0","id":"3","source":"/shop/eu","type":"com.example.order.created","subject":"eu-1","data":{"total":101}},
			{"specversion":"1.0","id":"4","source":"/shop/us","type":"com.example.order.created","subject":"us-1","data":{"total":101}}]`},
		"text/plain without ce headers":         {ct: "text/plain", body: "hello", status: 400, contain: "specversion"},
		"json without ce headers":               {ct: "application/json", body: `{"total": 150}`, status: 400, contain: "specversion"},
		"another cloudevents format":            {ct: "application/cloudevents+xml", body: "<x/>", status: 415},
		"a cloudevents json in another charset": {ct: "application/cloudevents+json; charset=iso-8859-1", body: "{}", status: 415},
	} {
		t.Run(name, func(t *testing.T) {
			st, body := e.post(t, tc.ct, tc.headers, []byte(tc.body))
			require.Equal(t, tc.status, st, "%v", body)
			if st == 202 {
				require.Equal(t, tc.routed, body["routed"], "%v", body)
			}
			if tc.contain != "" {
				require.Contains(t, fmt.Sprint(body), tc.contain)
			}
		})
	}
}
