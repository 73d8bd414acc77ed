package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// privateRedis runs a redis-server of the test's own on a spare port, with
// an append-only file fsynced on every write, so a SIGKILL loses nothing;
// or, ephemeral, with no persistence at all, so a restart starts empty.
type privateRedis struct {
	t         *testing.T
	port      int
	dir       string
	ephemeral bool
	cmd       *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis { return newPrivateRedis(t, false) }

// startEphemeralRedis starts a private redis-server without persistence.
func startEphemeralRedis(t *testing.T) *privateRedis { return newPrivateRedis(t, true) }

func newPrivateRedis(t *testing.T, ephemeral bool) *privateRedis {
	t.Helper()
	addr := freeAddr(t)
	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	r := &privateRedis{t: t, port: port, dir: t.TempDir(), ephemeral: ephemeral}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--dir", r.dir}
	if r.ephemeral {
		args = append(args, "--appendonly", "no")
	} else {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	r.cmd = exec.Command("redis-server", args...)
	require.NoError(r.t, r.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
	defer c.Close()
	testenv.Eventually(r.t, 10*time.Second, func() bool { return c.Ping(r.t.Context()).Err() == nil }, "private redis up")
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestRedisRestartLosesNothing kills Redis while events are queued and in
// flight: publishing answers 503 with Retry-After while it is down, and once
// it is back the server recovers by itself and delivers every accepted event.
func TestRedisRestartLosesNothing(t *testing.T) {
	rd := startPrivateRedis(t)
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}, delay: 10 * time.Millisecond}
	serveFunction(t, fnAddr, c.handle)
	p := startServe(t, "--redis-url", rd.url())
	applyTrigger(t, p.GRPC, fmt.Sprintf(`
name: survive
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 4, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))
	postBatch(t, p.HTTP, 0, 300)
	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() >= 10 }, "deliveries started")
	rd.kill()

	// While Redis is down: 503 with Retry-After, and readiness fails.
	var saw503 atomic.Bool
	testenv.Eventually(t, 20*time.Second, func() bool {
		resp, err := http.Post("http://"+p.HTTP+"/events", "application/cloudevents+json",
			strings.NewReader(`{"specversion":"1.0","id":"down","source":"/crash","type":"crash.test"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			saw503.Store(true)
		}
		return saw503.Load()
	}, "503 while Redis is down")
	resp, err := http.Get("http://" + p.HTTP + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	rd.start()
	testenv.Eventually(t, 20*time.Second, func() bool {
		resp, err := http.Get("http://" + p.HTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "ready again")
	postBatch(t, p.HTTP, 300, 100)
	testenv.Eventually(t, 60*time.Second, func() bool { return c.unique() >= 400 }, "every accepted event delivered (have %d)", c.unique())
	t.Logf("redis restart: 400 accepted, %d delivered, %d duplicates", c.unique(), c.duplicates())
	require.Equal(t, 400, c.unique())
}
