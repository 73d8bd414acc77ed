package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/store"
)

// master is one master of the cluster and its lowest slot.
type master struct {
	id, addr string
	lowest   int
}

func clusterMasters(t *testing.T, c *redis.ClusterClient) []master {
	t.Helper()
	shards, err := c.ClusterShards(t.Context()).Result()
	require.NoError(t, err)
	var out []master
	for _, sh := range shards {
		if len(sh.Slots) == 0 {
			continue
		}
		lowest := int(sh.Slots[0].Start)
		for _, r := range sh.Slots {
			lowest = min(lowest, int(r.Start))
		}
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				out = append(out, master{id: n.ID, addr: n.IP + ":" + strconv.FormatInt(n.Port, 10), lowest: lowest})
			}
		}
	}
	return out
}

// reshard moves the lowest slot of from to to with redis-cli, which moves
// each key with MIGRATE while the slot is served.
func reshard(t *testing.T, from, to master) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", "--cluster", "reshard", from.addr, "--cluster-from", from.id,
		"--cluster-to", to.id, "--cluster-slots", "1", "--cluster-yes", "--cluster-pipeline", "5").CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster reshard:\n%s", out)
}

// TestReshardUnderLoad moves the hash slot of a trigger's keys from one
// master to another and back while events are published to it and
// delivered (go-redis follows MOVED and ASK; a script on a slot whose keys
// are half moved gets TRYAGAIN and is tried again): every accepted event
// is delivered, duplicates are counted.
func TestReshardUnderLoad(t *testing.T) {
	b := testenv.Cluster(t)
	cc := b.Client.(*redis.ClusterClient)
	masters := clusterMasters(t, cc)
	require.Len(t, masters, 3)
	// The trigger's slot is the lowest of its master, so that moving one
	// slot from it moves the trigger's keys, and it is lower than every
	// slot of the master it moves to, so that moving one slot back moves
	// them back.
	src, dst := masters[0], masters[1]
	for _, m := range masters {
		if m.lowest < src.lowest {
			src = m
		}
	}
	for _, m := range masters {
		if m.id != src.id {
			dst = m
		}
	}
	keys := store.NewKeys(b.Prefix)
	name := ""
	for i := 0; name == ""; i++ {
		n := "reshard-" + strconv.Itoa(i)
		if store.Slot(keys.Queue(n).Ready) == src.lowest {
			name = n
		}
	}
	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}, delay: 5 * time.Millisecond}
	serveFunction(t, fnAddr, c.handle)
	args := []string{"--redis-url", b.URL, "--key-prefix", b.Prefix, "--lease-grace", "1s"}
	a, o := startServe(t, args...), startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: %s
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
delivery: {max_concurrency: 4, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, name, fnAddr))
	ld := startLoad(t, "reshard", []string{a.HTTP, o.HTTP}, 4, 3*time.Millisecond, 2*time.Minute)
	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() >= 100 }, "load delivered")

	slotOwner := func() string {
		m, err := cc.MasterForKey(t.Context(), keys.Queue(name).Ready)
		require.NoError(t, err)
		return m.Options().Addr
	}
	require.Equal(t, src.addr, slotOwner())
	reshard(t, src, dst)
	cc.ReloadState(t.Context())
	testenv.Eventually(t, 10*time.Second, func() bool { cc.ReloadState(t.Context()); return slotOwner() == dst.addr }, "slot %d moved to %s", src.lowest, dst.addr)
	mid := len(ld.accepted())
	testenv.Eventually(t, 20*time.Second, func() bool { return len(ld.accepted()) >= mid+100 }, "publishing goes on after the move")
	reshard(t, dst, src)
	testenv.Eventually(t, 10*time.Second, func() bool { cc.ReloadState(t.Context()); return slotOwner() == src.addr }, "slot %d moved back", src.lowest)
	mid = len(ld.accepted())
	testenv.Eventually(t, 20*time.Second, func() bool { return len(ld.accepted()) >= mid+100 }, "publishing goes on after the move back")

	ld.stop()
	acked := ld.accepted()
	testenv.Eventually(t, 60*time.Second, func() bool { return len(c.missing(acked)) == 0 },
		"every accepted event delivered (%d missing of %d)", len(c.missing(acked)), len(acked))
	t.Logf("reshard of slot %d (trigger %s) %s → %s → back under load: %d accepted, %d delivered, %d duplicates; %d refused with Retry-After, %d failed",
		src.lowest, name, src.addr, dst.addr, len(acked), c.unique(), c.duplicates(), ld.retry.Load(), ld.failed.Load())
	require.Zero(t, ld.bad503.Load()+ld.failed.Load(), "no publish failed other than with a 503 and Retry-After")
}
