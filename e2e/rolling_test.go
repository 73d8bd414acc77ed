package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/childproc"
	"github.com/switchyard-io/switchyard/internal/testenv"
)

// readiness polls an instance's /readyz until it stops answering and keeps
// the sequence of what it saw: "ready", "unready", "closed".
type readiness struct {
	mu   sync.Mutex
	seen []string
	done chan struct{}
}

func watchReadiness(addr string) *readiness {
	r := &readiness{done: make(chan struct{})}
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(r.done)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			state := "closed"
			if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				state = map[bool]string{true: "ready", false: "unready"}[resp.StatusCode == http.StatusOK]
			}
			r.mu.Lock()
			if len(r.seen) == 0 || r.seen[len(r.seen)-1] != state {
				r.seen = append(r.seen, state)
			}
			r.mu.Unlock()
			if state == "closed" {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return r
}

func (r *readiness) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestRollingRestartLosesNothing: three instances on one Redis under steady
// load, each stopped with SIGTERM and started again in turn. Each turns
// unready before its listener closes (it keeps serving for
// --shutdown-delay), its attempts in flight finish before it exits (or
// their leases hand them to the others), and every accepted event is
// delivered; the duplicates are reported.
func TestRollingRestartLosesNothing(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}, delay: 5 * time.Millisecond}
	serveFunction(t, fnAddr, c.handle)
	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", prefix, "--shutdown-delay", "1s", "--lease-grace", "1s"}
	procs := []*proc{startServe(t, args...), startServe(t, args...), startServe(t, args...)}
	applyTrigger(t, procs[0].GRPC, fmt.Sprintf(`
name: rolling
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))
	ld := startLoad(t, "roll", []string{procs[0].HTTP, procs[1].HTTP, procs[2].HTTP}, 3, 5*time.Millisecond, 2*time.Minute)
	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() >= 100 }, "load delivered")

	for i, p := range procs {
		before := len(ld.accepted())
		rd := watchReadiness(p.HTTP)
		testenv.Eventually(t, 5*time.Second, func() bool { s := rd.states(); return len(s) > 0 && s[0] == "ready" }, "instance %d ready", i)
		if err := p.Stop(30 * time.Second); errors.Is(err, childproc.ErrStopTimeout) {
			t.Fatalf("instance %d did not stop on SIGTERM:\n%s", i, p.Logs())
		}
		<-rd.done
		require.Equal(t, []string{"ready", "unready", "closed"}, rd.states(), "instance %d: /readyz turns unready before the listener closes", i)
		procs[i] = startServe(t, args...)
		ld.setTarget(i, procs[i].HTTP)
		testenv.Eventually(t, 20*time.Second, func() bool { return len(ld.accepted()) >= before+100 }, "load continues after restarting instance %d", i)
	}
	ld.stop()
	acked := ld.accepted()
	testenv.Eventually(t, 60*time.Second, func() bool { return len(c.missing(acked)) == 0 },
		"every accepted event delivered (%d missing of %d)", len(c.missing(acked)), len(acked))
	t.Logf("rolling restart of 3 instances: %d accepted, %d delivered, %d duplicates; %d publishes refused with Retry-After, %d failed (connection refused while an instance restarted)",
		len(acked), c.unique(), c.duplicates(), ld.retry.Load(), ld.failed.Load())
	require.Zero(t, ld.bad503.Load(), "every 503 carries Retry-After")
	// Every attempt in flight at a SIGTERM finished before its instance
	// exited: none was left to run out its lease (a failed attempt).
	out, err := run(t, nil, "trigger", "stats", "rolling", "-o", "json", "--server", procs[0].GRPC)
	require.NoError(t, err)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &st))
	require.Contains(t, st, "failed_attempts")
	require.EqualValues(t, 0, st["failed_attempts"], "no attempt failed (none expired with a stopped instance): %s", out)
}
