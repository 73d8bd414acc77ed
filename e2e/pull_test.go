package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk"
)

// seen records the ids a consumer handled.
type seen struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seen) add(id string) {
	s.mu.Lock()
	s.ids[id]++
	s.mu.Unlock()
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// TestPullKillsLoseNothing runs two `switchyard serve` processes on one
// Redis with consumers of one pull trigger on each: a `switchyard pull`
// process killed with SIGKILL mid-run, and SDK consumers in this process.
// Then one of the servers is killed with SIGKILL while its consumer holds
// events. Every published event is acknowledged exactly once in the end
// (the events the dead consumer and the dead server held come back to the
// living consumer), and nothing is dead-lettered.
func TestPullKillsLoseNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	args := []string{"--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	b := startServe(t, args...)
	applyTrigger(t, a.GRPC, `
name: jobs
filter: {attributes: {type: crash.test}}
target: {pull: {}}
delivery: {timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms, max_attempts: 100, max_concurrency: 16}
`)

	// A consumer process, killed once it has printed a few events.
	pull := exec.Command(binary, "pull", "--trigger", "jobs", "--server", a.GRPC)
	out, err := pull.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, pull.Start())
	printed := &seen{ids: map[string]int{}}
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l struct{ ID string }
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				printed.add(l.ID)
			}
		}
	}()
	t.Cleanup(func() { _ = pull.Process.Kill(); <-pulled; _ = pull.Wait() })

	// SDK consumers, one on each server.
	handled := &seen{ids: map[string]int{}}
	h := func(ctx context.Context, ev event.Event) error {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.add(ev.ID())
		return nil
	}
	consume := func(addr string) {
		c, err := sdk.New(sdk.Config{Address: addr})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- c.Subscribe(ctx, "jobs", h, sdk.SubscribeOptions{Concurrency: 4, DrainTimeout: time.Second})
		}()
		t.Cleanup(func() { cancel(); <-done; _ = c.Close() })
	}

	const total = 400
	postBatch(t, a.HTTP, 0, 100)
	testenv.Eventually(t, 20*time.Second, func() bool { return printed.count() >= 5 }, "the pull process printed events")
	require.NoError(t, pull.Process.Signal(syscall.SIGKILL))
	consume(a.GRPC)
	consume(b.GRPC)
	for i := 100; i < total; i += 100 {
		postBatch(t, b.HTTP, i, 100)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return handled.count() >= 150 }, "consumers at work")
	a.Kill()

	stats := func() map[string]any {
		out, err := run(t, nil, "trigger", "stats", "jobs", "-o", "json", "--server", b.GRPC)
		require.NoError(t, err)
		var st map[string]any
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &st))
		return st
	}
	testenv.Eventually(t, 60*time.Second, func() bool { return stats()["delivered"] == float64(total) },
		"every event acknowledged after the kills; stats %v", stats())
	st := stats()
	require.EqualValues(t, 0, st["dead_lettered"], "%v", st)
	require.EqualValues(t, 0, st["undelivered"], "%v", st)
	all := map[string]bool{}
	for _, s := range []*seen{printed, handled} {
		s.mu.Lock()
		for id := range s.ids {
			all[id] = true
		}
		s.mu.Unlock()
	}
	for i := range total {
		require.True(t, all[fmt.Sprintf("ev-%d", i)], "ev-%d never reached a consumer", i)
	}
	t.Logf("pull kills: %d events, %d printed by the killed consumer process, %d handled by the SDK consumers; failed attempts %v (lost with the killed consumer and server)",
		total, printed.count(), handled.count(), st["failed_attempts"])
}
