package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// arrivalLog is a function endpoint that records each event id's first
// arrival and how many times it came.
type arrivalLog struct {
	mu    sync.Mutex
	first map[string]time.Time
	times map[string]int
}

func (a *arrivalLog) handle(_ context.Context, ev event.Event) (function.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.first[ev.ID()]; !ok {
		a.first[ev.ID()] = time.Now()
	}
	a.times[ev.ID()]++
	return function.Result{}, nil
}

func (a *arrivalLog) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.first))
	for id := range a.first {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func triggerStats(t *testing.T, grpcAddr, name string) *switchyardv1.TriggerStats {
	t.Helper()
	c, err := sdk.New(sdk.Config{Address: grpcAddr})
	require.NoError(t, err)
	defer c.Close()
	st, err := c.TriggerStats(context.Background(), name)
	require.NoError(t, err)
	require.Len(t, st, 1)
	return st[0]
}

// TestScheduleFiresEachTickOnceAcrossInstances runs a schedule source that
// ticks every second in three `switchyard serve` processes on one Redis,
// SIGKILLs one of them mid-run, and checks that every tick from the first
// to the last was published exactly once: the ticks delivered are
// consecutive seconds, and the trigger queued as many events as there are
// distinct ticks (a tick published twice would be queued twice, under the
// same id). A fourth instance without the source holds the trigger and
// drains the queue at the end.
func TestScheduleFiresEachTickOnceAcrossInstances(t *testing.T) {
	testenv.Real(t)
	redisURL, prefix := testenv.RedisURL(), testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	a := &arrivalLog{first: map[string]time.Time{}, times: map[string]int{}}
	serveFunction(t, fnAddr, a.handle)
	common := []string{"--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	drain := startServe(t, common...)
	applyTrigger(t, drain.GRPC, fmt.Sprintf(`
name: ticks
filter: {attributes: {type: e2e.tick}}
target: {grpc: %q}
delivery: {timeout: 2s, initial_backoff: 50ms, max_backoff: 200ms}
`, fnAddr))

	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
sources:
  - name: every-second
    kind: schedule
    fields:
      cron: "* * * * * *"
      type: e2e.tick
      data: '{"job": "e2e"}'
`), 0o600))
	var procs []*proc
	for range 3 {
		procs = append(procs, startServe(t, append([]string{"--config", cfg}, common...)...))
	}
	out, err := run(t, nil, "source", "list", "--server", procs[0].GRPC)
	require.NoError(t, err)
	require.Contains(t, out, "NEXT FIRE")
	require.Contains(t, out, "every-second")

	testenv.Eventually(t, 10*time.Second, func() bool { return len(a.ids()) >= 3 }, "ticks delivered")
	procs[1].Kill() // SIGKILL, mid-run
	n := len(a.ids())
	testenv.Eventually(t, 15*time.Second, func() bool { return len(a.ids()) >= n+4 }, "ticks go on after the kill")
	for _, p := range []*proc{procs[0], procs[2]} {
		p.stop(t)
	}
	testenv.Eventually(t, 15*time.Second, func() bool { return triggerStats(t, drain.GRPC, "ticks").GetUndelivered() == 0 }, "every tick queued is delivered")

	ids := a.ids()
	require.GreaterOrEqual(t, len(ids), 7)
	var ticks []time.Time
	for _, id := range ids {
		ts, ok := strings.CutPrefix(id, "every-second@")
		require.True(t, ok, id)
		tm, err := time.Parse(time.RFC3339, ts)
		require.NoError(t, err)
		ticks = append(ticks, tm)
	}
	for i := 1; i < len(ticks); i++ {
		require.Equal(t, time.Second, ticks[i].Sub(ticks[i-1]), "ticks %s and %s: one is missing in between", ticks[i-1], ticks[i])
	}
	st := triggerStats(t, drain.GRPC, "ticks")
	require.EqualValues(t, len(ids), st.GetEnqueued(), "each tick queued once (%d ticks)", len(ids))
	a.mu.Lock()
	redelivered := 0
	for _, n := range a.times {
		redelivered += n - 1
	}
	a.mu.Unlock()
	t.Logf("%d ticks from %s to %s, each published once; %d deliveries repeated (attempts in flight on the killed instance)",
		len(ids), ticks[0].Format(time.TimeOnly), ticks[len(ticks)-1].Format(time.TimeOnly), redelivered)
}

// TestDeliverAfterSurvivesTheInstanceThatAcceptedIt publishes delayed
// events to one instance and SIGKILLs it before they are due: they wait in
// Redis, and the other instance delivers them no earlier than asked and
// within a second after.
func TestDeliverAfterSurvivesTheInstanceThatAcceptedIt(t *testing.T) {
	testenv.Real(t)
	redisURL, prefix := testenv.RedisURL(), testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	a := &arrivalLog{first: map[string]time.Time{}, times: map[string]int{}}
	serveFunction(t, fnAddr, a.handle)
	common := []string{"--redis-url", redisURL, "--key-prefix", prefix}
	accepter, other := startServe(t, common...), startServe(t, common...)
	applyTrigger(t, other.GRPC, fmt.Sprintf(`
name: later
filter: {attributes: {type: e2e.later}}
target: {grpc: %q}
`, fnAddr))
	due := map[string]time.Time{}
	for i, after := range []string{"1500ms", "2s", "3s"} {
		id := fmt.Sprintf("later-%d", i)
		body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/e2e","type":"e2e.later","deliverafter":%q}`, id, after)
		d, err := time.ParseDuration(after)
		require.NoError(t, err)
		due[id] = time.Now().Add(d)
		resp, err := http.Post("http://"+accepter.HTTP+"/events", "application/cloudevents+json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	st := triggerStats(t, other.GRPC, "later")
	require.EqualValues(t, 3, st.GetEnqueued())
	accepter.Kill()
	if !waitFor(10*time.Second, func() bool { return len(a.ids()) == 3 }) {
		t.Fatalf("the delayed events are not delivered: %v; stats %v\n%s", a.ids(), triggerStats(t, other.GRPC, "later"), other.Logs())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, want := range due {
		got := a.first[id]
		require.False(t, got.Before(want), "%s arrived %s early", id, want.Sub(got))
		require.Less(t, got.Sub(want), time.Second, "%s arrived %s late", id, got.Sub(want))
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
