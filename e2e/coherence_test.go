package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
)

// perTrigger is a function endpoint that records which events each trigger
// delivered.
type perTrigger struct {
	mu   sync.Mutex
	seen map[string]map[string]int // trigger → event id → deliveries
}

func newPerTrigger() *perTrigger { return &perTrigger{seen: map[string]map[string]int{}} }

func (p *perTrigger) handle(ctx context.Context, ev event.Event) (function.Result, error) {
	info, _ := function.FromContext(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[info.Trigger] == nil {
		p.seen[info.Trigger] = map[string]int{}
	}
	p.seen[info.Trigger][ev.ID()]++
	return function.Result{}, nil
}

// missing returns the ids of want (trigger → ids) not delivered yet.
func (p *perTrigger) missing(want map[string][]string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for trig, ids := range want {
		for _, id := range ids {
			if p.seen[trig][id] == 0 {
				n++
			}
		}
	}
	return n
}

// publishTyped publishes one event of type typ and returns how many
// triggers it was routed to.
func publishTyped(httpAddr, id, typ string) (int, error) {
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/coherence","type":%q}`, id, typ)
	resp, err := http.Post("http://"+httpAddr+"/events", "application/cloudevents+json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("publish %s: %d %s", id, resp.StatusCode, b)
	}
	var out struct{ Routed int }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return out.Routed, nil
}

func typedTrigger(name, typ, target string) *switchyardv1.Trigger {
	return trigger.ToProto(trigger.Spec{Name: name, Filter: filter.Spec{Attributes: map[string]string{"type": typ}},
		Target: trigger.Target{GRPC: target}})
}

func apiClient(t *testing.T, grpcAddr string) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{Address: grpcAddr, Timeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestTriggerChangesAreLiveEverywhereOnReturn applies triggers on instance
// A and publishes on B and C the moment the apply returned, thousands of
// times: every event routes by the trigger just applied (and a deleted
// trigger routes nothing), and every routed event is delivered.
func TestTriggerChangesAreLiveEverywhereOnReturn(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	fn := newPerTrigger()
	serveFunction(t, fnAddr, fn.handle)
	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", prefix}
	a := startServe(t, append(args, "--instance-id", "a")...)
	b := startServe(t, append(args, "--instance-id", "b")...)
	c := startServe(t, append(args, "--instance-id", "c")...)
	api := apiClient(t, a.GRPC)

	const workers, rounds = 4, 500 // 2,000 apply→publish rounds
	var mu sync.Mutex
	want := map[string][]string{} // trigger → ids routed to it
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		go func() {
			errs <- func() error {
				ctx := context.Background()
				for i := range rounds {
					name := fmt.Sprintf("rw-%d-%d", w, i%5)
					typ := fmt.Sprintf("rw.%d.%d", w, i)
					resp, err := api.ApplyTrigger(ctx, typedTrigger(name, typ, fnAddr))
					if err != nil {
						return fmt.Errorf("apply %s: %w", name, err)
					}
					if l := resp.GetLaggingInstances(); len(l) > 0 {
						return fmt.Errorf("apply %s: lagging %v", name, l)
					}
					for _, p := range []*proc{b, c} {
						id := fmt.Sprintf("%s@%s", typ, p.HTTP)
						routed, err := publishTyped(p.HTTP, id, typ)
						if err != nil {
							return err
						}
						if routed != 1 {
							return fmt.Errorf("round %d of worker %d: %s applied on A, an event of type %s published on %s right after was routed to %d triggers", i, w, name, typ, p.HTTP, routed)
						}
						mu.Lock()
						want[name] = append(want[name], id)
						mu.Unlock()
					}
					if i%10 != 9 {
						continue
					}
					// A deletion routes nothing anywhere once it returned.
					del := fmt.Sprintf("del-%d", w)
					dtyp := fmt.Sprintf("del.%d.%d", w, i)
					if _, err := api.ApplyTrigger(ctx, typedTrigger(del, dtyp, fnAddr)); err != nil {
						return err
					}
					dresp, err := api.DeleteTrigger(ctx, del, true)
					if err != nil {
						return err
					}
					if l := dresp.GetLaggingInstances(); len(l) > 0 {
						return fmt.Errorf("delete %s: lagging %v", del, l)
					}
					for _, p := range []*proc{b, c} {
						routed, err := publishTyped(p.HTTP, fmt.Sprintf("%s@%s", dtyp, p.HTTP), dtyp)
						if err != nil {
							return err
						}
						if routed != 0 {
							return fmt.Errorf("%s deleted on A, an event of type %s published on %s right after was routed to %d triggers", del, dtyp, p.HTTP, routed)
						}
					}
				}
				return nil
			}()
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	t.Logf("%d apply→publish rounds (and %d deletions) in %s", workers*rounds, workers*rounds/10, time.Since(start).Round(time.Millisecond))
	testenv.Eventually(t, 60*time.Second, func() bool { return fn.missing(want) == 0 },
		"every routed event delivered (%d missing)", fn.missing(want))
}

// runCLI runs a switchyard client command and returns its stdout and stderr.
func runCLI(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = stdin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestFrozenInstanceLagsThenIsNotWaitedFor freezes instance C with SIGSTOP:
// a trigger applied right after answers once the sync timeout passed,
// naming C (and the CLI warns); once C's heartbeat is older than three
// intervals, C is not waited for any more and leaves the registry; resumed,
// C registers again and catches up.
func TestFrozenInstanceLagsThenIsNotWaitedFor(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	fnAddr := freeAddr(t)
	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", prefix,
		"--heartbeat-interval", "2s", "--trigger-sync-timeout", "1s"}
	a := startServe(t, append(args, "--instance-id", "a")...)
	b := startServe(t, append(args, "--instance-id", "b")...)
	c := startServe(t, append(args, "--instance-id", "c")...)
	apply := func(typ string) (stderr string) {
		yaml := fmt.Sprintf("name: frozen\nfilter: {attributes: {type: %s}}\ntarget: {grpc: %q}\n", typ, fnAddr)
		out, stderr, err := runCLI(t, strings.NewReader(yaml), "trigger", "apply", "-f", "-", "--server", a.GRPC)
		require.NoError(t, err, stderr)
		require.Contains(t, out, "trigger/frozen")
		return stderr
	}
	require.Empty(t, apply("frozen.0"), "all three confirm")

	require.NoError(t, c.Signal(syscall.SIGSTOP))
	stopped := true
	t.Cleanup(func() {
		if stopped {
			_ = c.Signal(syscall.SIGCONT)
		}
	})
	// C's last heartbeat is at most one interval old: it is alive, and
	// named once the one-second wait is over. The apply succeeds.
	started := time.Now()
	stderr := apply("frozen.1")
	require.GreaterOrEqual(t, time.Since(started), time.Second)
	require.Contains(t, stderr, "warning: trigger/frozen: not yet live on 1 instance(s): c")
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(a.Logs(), `"lagging":["c"]`) }, "A logs the laggard")
	for _, p := range []*proc{a, b} {
		routed, err := publishTyped(p.HTTP, "after-1@"+p.HTTP, "frozen.1")
		require.NoError(t, err)
		require.Equal(t, 1, routed)
	}

	// Three intervals (6 s) after its last heartbeat, C counts as gone.
	n := 2
	testenv.Eventually(t, 30*time.Second, func() bool {
		n++
		return apply(fmt.Sprintf("frozen.%d", n)) == ""
	}, "an apply no longer waits for the frozen instance")
	opt, err := redis.ParseURL(testenv.RedisURL())
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	keys := store.NewKeys(prefix)
	members := func() string {
		ids, err := rdb.ZRange(context.Background(), keys.Members(), 0, -1).Result()
		if err != nil {
			return err.Error()
		}
		slices.Sort(ids)
		return strings.Join(ids, ",")
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return members() == "a,b" }, "the frozen instance left the registry")

	require.NoError(t, c.Signal(syscall.SIGCONT))
	stopped = false
	last := fmt.Sprintf("frozen.%d", n)
	testenv.Eventually(t, 20*time.Second, func() bool {
		routed, err := publishTyped(c.HTTP, fmt.Sprintf("resumed-%d", time.Now().UnixNano()), last)
		return err == nil && routed == 1
	}, "the resumed instance catches up")
	testenv.Eventually(t, 20*time.Second, func() bool { return members() == "a,b,c" }, "the resumed instance registers again")
	require.Empty(t, apply("frozen.final"), "all three confirm again")
}

// readyStatus returns /readyz's status code and body.
func readyStatus(httpAddr string) (int, string, error) {
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestRedisRestartedEmptyRecovers kills a Redis without persistence and
// starts it again, empty, on the same port, with Switchyard running: it is
// not ready while Redis is away; then it recreates the ingest log's group
// and its scripts and writes its triggers back, by itself; events routed to
// both triggers (through the ingest log) published after the restart are
// delivered to both, without restarting Switchyard.
func TestRedisRestartedEmptyRecovers(t *testing.T) {
	rd := startEphemeralRedis(t)
	fnAddr := freeAddr(t)
	fn := newPerTrigger()
	serveFunction(t, fnAddr, fn.handle)
	p := startServe(t, "--redis-url", rd.url(), "--instance-id", "solo")
	for _, name := range []string{"first", "second"} {
		applyTrigger(t, p.GRPC, fmt.Sprintf("name: %s\nfilter: {attributes: {type: restart.test}}\ntarget: {grpc: %q}\n", name, fnAddr))
	}
	want := map[string][]string{}
	publish := func(id string) {
		routed, err := publishTyped(p.HTTP, id, "restart.test")
		require.NoError(t, err)
		require.Equal(t, 2, routed)
		want["first"] = append(want["first"], id)
		want["second"] = append(want["second"], id)
	}
	publish("before")
	testenv.Eventually(t, 20*time.Second, func() bool { return fn.missing(want) == 0 }, "delivered before the restart")

	conn, err := grpc.NewClient(p.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	healthIs := func(want healthpb.HealthCheckResponse_ServingStatus) func() bool {
		return func() bool {
			resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			return err == nil && resp.GetStatus() == want
		}
	}
	require.True(t, healthIs(healthpb.HealthCheckResponse_SERVING)())

	rd.kill()
	testenv.Eventually(t, 20*time.Second, func() bool {
		code, body, err := readyStatus(p.HTTP)
		return err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, `"detail"`)
	}, "not ready, with a reason, while Redis is away")
	testenv.Eventually(t, 20*time.Second, healthIs(healthpb.HealthCheckResponse_NOT_SERVING), "gRPC health NOT_SERVING while Redis is away")
	rd.start() // empty: no persistence

	// Accepted as soon as Redis answers again, before anything is repaired.
	testenv.Eventually(t, 20*time.Second, func() bool {
		routed, err := publishTyped(p.HTTP, "after-0", "restart.test")
		return err == nil && routed == 2
	}, "publishing works again")
	want["first"] = append(want["first"], "after-0")
	want["second"] = append(want["second"], "after-0")
	for i := 1; i <= 50; i++ {
		publish(fmt.Sprintf("after-%d", i))
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return fn.missing(want) == 0 },
		"every event accepted after the restart delivered to both triggers (%d missing)", fn.missing(want))
	testenv.Eventually(t, 20*time.Second, func() bool {
		code, _, err := readyStatus(p.HTTP)
		return err == nil && code == http.StatusOK
	}, "ready again")
	testenv.Eventually(t, 20*time.Second, healthIs(healthpb.HealthCheckResponse_SERVING), "gRPC health SERVING again")

	out, err := run(t, nil, "trigger", "list", "-o", "json", "--server", p.GRPC)
	require.NoError(t, err)
	var listed []struct{ Name string }
	require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
	names := []string{}
	for _, l := range listed {
		names = append(names, l.Name)
	}
	require.Equal(t, []string{"first", "second"}, names, "the triggers are back in Redis")
	logs := p.Logs()
	require.Contains(t, logs, "restored the triggers from this instance's view")
	require.Less(t, strings.Count(logs, "NOGROUP"), 3, "the fan-out does not loop on NOGROUP:\n%s", logs)
}
