package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestSentinelFailover runs an instance on a master and replica watched by
// three sentinels, kills the master (SIGKILL) under load and counts what the
// failover cost. Ingest answers 503 with Retry-After while there is no
// master and resumes by itself once the sentinels promoted the replica.
// With --ack-after write, acknowledged events the replica had not received
// yet are lost (asynchronous replication): the test reports how many. With
// --ack-after replicas=1 none is: an event is acknowledged only once the
// replica has it. The killed server is started again (empty) and the
// sentinels make it the new master's replica, which replicas=1 needs to
// accept anything again (it is started as a replica at once, where
// Sentinel would take a few seconds to reconfigure it).
func TestSentinelFailover(t *testing.T) {
	for _, mode := range []string{"write", "replicas=1"} {
		t.Run(mode, func(t *testing.T) { sentinelFailover(t, mode) })
	}
}

func sentinelFailover(t *testing.T, mode string) {
	g, err := testenv.StartSentinelGroup(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}, delay: 2 * time.Millisecond}
	serveFunction(t, fnAddr, c.handle)
	p := startServe(t, "--redis-url", g.URL(), "--ack-after", mode, "--ack-timeout", "500ms", "--lease-grace", "1s")
	applyTrigger(t, p.GRPC, fmt.Sprintf(`
name: failover
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))
	ld := startLoad(t, "fo", []string{p.HTTP}, 3, 3*time.Millisecond, 2*time.Minute)
	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() >= 200 }, "load delivered")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old, err := g.Master(ctx)
	require.NoError(t, err)
	killed := g.Node(old)
	require.NotNil(t, killed)
	killed.Kill()
	acceptedAtKill := len(ld.accepted())
	testenv.Eventually(t, 30*time.Second, func() bool { return ld.retry.Load() > 0 }, "503 with Retry-After during the failover")
	var promoted string
	testenv.Eventually(t, 30*time.Second, func() bool {
		m, err := g.Master(ctx)
		promoted = m
		return err == nil && m != old
	}, "the sentinels promote the replica")
	require.NoError(t, killed.StartReplicaOf(promoted), "the old master comes back, empty, as the new master's replica")
	require.NoError(t, g.WaitReplica(ctx), "the sentinels make it the new master's replica")
	testenv.Eventually(t, 30*time.Second, func() bool { return len(ld.accepted()) >= acceptedAtKill+200 }, "ingest resumes by itself")
	ld.stop()

	acked := ld.accepted()
	// Wait until every accepted event is delivered, or, in write mode,
	// until deliveries stop changing: what is missing then was lost.
	last, lastChange := -1, time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		m := len(c.missing(acked))
		if m == 0 {
			break
		}
		if m != last {
			last, lastChange = m, time.Now()
		} else if mode == "write" && time.Since(lastChange) > 5*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	lost := len(c.missing(acked))
	t.Logf("sentinel failover, --ack-after %s: %d accepted, %d acknowledged events lost, %d duplicates, %d publishes answered 503 with Retry-After, %d failed",
		mode, len(acked), lost, c.duplicates(), ld.retry.Load(), ld.failed.Load())
	require.Zero(t, ld.bad503.Load(), "every 503 carries Retry-After")
	if mode != "write" {
		require.Zero(t, lost, "with replicas=1 no acknowledged event is lost")
	}
}
