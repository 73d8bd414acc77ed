package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// gate is a function that holds every delivery until opened, then counts
// them by event id.
type gate struct {
	open chan struct{}
	mu   sync.Mutex
	seen map[string]int
}

func (g *gate) handle(ctx context.Context, ev event.Event) (function.Result, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return function.Result{}, ctx.Err()
	}
	g.mu.Lock()
	g.seen[ev.ID()]++
	g.mu.Unlock()
	return function.Result{}, nil
}

func (g *gate) missing(ids []string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, id := range ids {
		if g.seen[id] == 0 {
			n++
		}
	}
	return n
}

// postBig publishes a batch of n events of 16 KiB each, ids prefix-i, and
// returns the status and the body.
func postBig(t *testing.T, httpAddr, prefix string, n int) (int, http.Header, string) {
	t.Helper()
	data := strings.Repeat("x", 16<<10)
	var b bytes.Buffer
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"%s-%d","source":"/oom","type":"oom.test","data":%q}`, prefix, i, data)
	}
	b.WriteString("]")
	// 503 (the store did not answer in time: a loaded machine) asks for a
	// retry, as a publisher would; nothing else is retried.
	for try := 0; ; try++ {
		resp, err := http.Post("http://"+httpAddr+"/events", "application/cloudevents-batch+json", bytes.NewReader(b.Bytes()))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || try == 20 {
			return resp.StatusCode, resp.Header, string(body)
		}
		t.Logf("publish %s: 503 %s; retrying", prefix, body)
		time.Sleep(250 * time.Millisecond)
	}
}

func readyz(t *testing.T, httpAddr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// With Redis at maxmemory 64mb and noeviction, a flood of publishes while
// the function holds its deliveries fills it: publishing answers 507 (HTTP,
// problem "store full") and RESOURCE_EXHAUSTED with reason STORE_FULL
// (gRPC) instead of "cannot be reached", /readyz says the store is full,
// and once the function drains the queue (claims and acks run while Redis
// is full) publishing works again. Every accepted event is delivered.
func TestRedisFullAnswers507AndDrains(t *testing.T) {
	rd := testenv.StartRedis(t, "--maxmemory", "64mb", "--maxmemory-policy", "noeviction")
	fnAddr := freeAddr(t)
	g := &gate{open: make(chan struct{}), seen: map[string]int{}}
	serveFunction(t, fnAddr, g.handle)
	p := startServe(t, "--redis-url", rd.URL)
	applyTrigger(t, p.GRPC, fmt.Sprintf(`
name: oom
filter: {attributes: {type: oom.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 16, timeout: 60s}
`, fnAddr))

	var accepted []string
	var full struct {
		header http.Header
		body   string
	}
	for batch := 0; full.body == ""; batch++ {
		require.Less(t, batch, 400, "64 MiB should fill long before 400 batches of 800 KiB")
		code, h, body := postBig(t, p.HTTP, fmt.Sprintf("b%d", batch), 50)
		switch code {
		case http.StatusAccepted:
			for i := range 50 {
				accepted = append(accepted, fmt.Sprintf("b%d-%d", batch, i))
			}
		case http.StatusInsufficientStorage:
			full.header, full.body = h, body
		default:
			t.Fatalf("batch %d: %d %s", batch, code, body)
		}
	}
	// A large request counts in Redis's memory while it is read, so it can
	// be refused where a smaller one still fits: publish single events
	// until one is refused too, and Redis stays full (nothing drains).
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "single events should fill the rest")
		code, h, body := postBig(t, p.HTTP, fmt.Sprintf("s%d", i), 1)
		if code == http.StatusInsufficientStorage {
			full.header, full.body = h, body
			break
		}
		require.Equal(t, http.StatusAccepted, code, body)
		accepted = append(accepted, fmt.Sprintf("s%d-0", i))
	}
	t.Logf("redis full after %d accepted events", len(accepted))
	var prob map[string]any
	require.NoError(t, json.Unmarshal([]byte(full.body), &prob))
	require.Equal(t, "/problems/store-full", prob["type"])
	require.Contains(t, prob["detail"], "store full")
	require.NotEmpty(t, full.header.Get("Retry-After"))
	require.Equal(t, "application/problem+json", full.header.Get("Content-Type"))

	// gRPC says the same.
	c, err := sdk.New(sdk.Config{Address: p.GRPC})
	require.NoError(t, err)
	defer c.Close()
	ev := event.New()
	ev.SetID("grpc-1")
	ev.SetSource("/oom")
	ev.SetType("oom.test")
	require.NoError(t, ev.SetData("application/json", map[string]string{"pad": strings.Repeat("y", 16<<10)}))
	err = c.Publish(context.Background(), ev)
	st, _ := status.FromError(err)
	require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
	var reason string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	require.Equal(t, "STORE_FULL", reason)

	code, body := readyz(t, p.HTTP)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "store full")
	require.Contains(t, body, "maxmemory")

	// The function drains the queue: publishing works again.
	close(g.open)
	after := 0
	testenv.Eventually(t, 60*time.Second, func() bool {
		code, _, _ := postBig(t, p.HTTP, fmt.Sprintf("after%d", after), 10)
		if code == http.StatusAccepted {
			for i := range 10 {
				accepted = append(accepted, fmt.Sprintf("after%d-%d", after, i))
			}
			return true
		}
		require.Equal(t, http.StatusInsufficientStorage, code)
		after++
		return false
	}, "publishing accepted again")
	testenv.Eventually(t, 60*time.Second, func() bool { return g.missing(accepted) == 0 },
		"every accepted event delivered (%d of %d missing)", g.missing(accepted), len(accepted))
	testenv.Eventually(t, 10*time.Second, func() bool { code, _ := readyz(t, p.HTTP); return code == http.StatusOK }, "ready again")
}

// A Redis whose maxmemory-policy evicts any key is refused at start-up,
// saying how to proceed; --allow-evicting-redis starts anyway, with a
// warning.
func TestEvictingRedisIsRefused(t *testing.T) {
	rd := testenv.StartRedis(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	_, err := run(t, nil, "serve", "--redis-url", rd.URL, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0")
	require.Error(t, err)
	require.Contains(t, err.Error(), "allkeys-lru")
	require.Contains(t, err.Error(), "--allow-evicting-redis")

	p := startServe(t, "--redis-url", rd.URL, "--allow-evicting-redis")
	require.Contains(t, p.Logs(), "evicts keys when full")
	code, _ := readyz(t, p.HTTP)
	require.Equal(t, http.StatusOK, code)
}
