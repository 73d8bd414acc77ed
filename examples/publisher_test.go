package examples

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// The Node publisher's events arrive as published, in both content modes,
// header values needing percent-encoding included; a refused event and a
// full queue are reported as such (the SDK's own emitter resolves on both),
// and a pushed-back publish succeeds once it is retried after the delay
// Switchyard asked for.
func TestNodePublisher(t *testing.T) {
	d := npmBuild(t, "node-publisher")
	node := tool(t, "node", "Node.js 20 or later")
	e := startServer(t)
	orders, ordersAddr := goFunction(t, nil)
	release := make(chan struct{})
	slow, slowAddr := goFunction(t, func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	e.apply(t, fmt.Sprintf(`
name: orders
filter: {attributes: {type: com.example.order.created}}
target: {grpc: "%s"}
---
name: slow
filter: {attributes: {type: com.example.slow}}
target: {grpc: "%s"}
delivery: {max_queue: 1, timeout: 1m}
`, ordersAddr, slowAddr))

	publish := func(args ...string) *proc {
		return start(t, d, nil, false, node, append([]string{"dist/publish.js", "--url", e.http}, args...)...)
	}
	output := func(p *proc) string {
		var out []string
		for l := range p.stdout {
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}

	// Characters the HTTP binding percent-encodes in headers: space, '"',
	// '%' (here before two hex digits, which a raw header would lose) and
	// non-ASCII.
	const subject = `eu 42 "café" 100%41`
	const note = `a%20b é`
	for _, mode := range []string{"binary", "structured"} {
		id := "p-" + mode
		p := publish("--mode", mode, "--type", "com.example.order.created", "--source", "/shop/node", "--id", id,
			"--subject", subject, "--data", `{"total": 150, "note": "héllo"}`, "--ext", "tenant=acme", "--ext", "note="+note)
		require.Equal(t, 0, p.wait(t), p.Stderr())
		var answer struct {
			ID       string `json:"id"`
			Accepted int    `json:"accepted"`
			Routed   int    `json:"routed"`
		}
		require.NoError(t, json.Unmarshal([]byte(output(p)), &answer))
		require.Equal(t, id, answer.ID)
		require.Equal(t, 1, answer.Accepted)
		require.Equal(t, 1, answer.Routed)

		ev, _ := orders.wait(t, id)
		require.Equal(t, "/shop/node", ev.Source())
		require.Equal(t, subject, ev.Subject(), "%s mode", mode)
		require.Equal(t, "application/json", ev.DataContentType())
		require.JSONEq(t, `{"total": 150, "note": "héllo"}`, string(ev.Data()))
		require.Equal(t, map[string]any{"tenant": "acme", "note": note}, ev.Extensions(), "%s mode", mode)
		require.False(t, ev.Time().IsZero(), "the SDK sets time")
	}

	// A control character is allowed by the SDK, refused by Switchyard: exit
	// status 2, with the problem's detail.
	p := publish("--type", "com.example.order.created", "--source", "/shop/node", "--id", "bad", "--subject", "two\nlines")
	require.Equal(t, 2, p.wait(t), p.Stderr())
	require.Contains(t, p.Stderr(), "refused: HTTP 400")
	require.Contains(t, p.Stderr(), "control character")

	// A full queue: the first event holds the only place while its function
	// blocks; without retries the second is reported pushed back (exit 3).
	p = publish("--type", "com.example.slow", "--source", "/shop/node", "--id", "s1")
	require.Equal(t, 0, p.wait(t), p.Stderr())
	slow.wait(t, "s1")
	p = publish("--type", "com.example.slow", "--source", "/shop/node", "--id", "s2", "--retries", "0")
	require.Equal(t, 3, p.wait(t), p.Stderr())
	require.Contains(t, p.Stderr(), "pushed back: HTTP 429")

	// With retries, it waits as asked and gets in once the queue drains.
	p = publish("--type", "com.example.slow", "--source", "/shop/node", "--id", "s2", "--retries", "5")
	testenv.Eventually(t, 30*time.Second, func() bool { return strings.Contains(p.Stderr(), "retrying in") }, "a pushed-back retry")
	close(release)
	require.Equal(t, 0, p.wait(t), p.Stderr())
	slow.wait(t, "s2")
}
