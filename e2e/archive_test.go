package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestReplaySurvivesSIGKILL archives events no trigger wanted, starts a
// replay of them into a trigger created afterwards, kills the server that
// runs it with SIGKILL mid-way, and starts another on the same Redis: it
// takes the job over from its checkpoint, and every archived event is
// delivered, duplicates bounded by the batch the killed server had queued
// but not checkpointed (and the attempts it had in flight).
func TestReplaySurvivesSIGKILL(t *testing.T) {
	testenv.Real(t)
	c := &counter{seen: map[string]int{}}
	fn := freeAddr(t)
	serveFunction(t, fn, c.handle)
	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", testenv.PrefixT(t), "--lease-grace", "500ms", "--archive-retention", "1h"}
	a := startServe(t, args...)
	const total = 1500
	for i := 0; i < total; i += 100 {
		postBatch(t, a.HTTP, i, 100)
	}
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: backfill
filter: {attributes: {type: crash.test}}
target: {grpc: "%s"}
`, fn))

	out, err := run(t, nil, "filter", "test", "--trigger", "backfill", "--recent", "5", "-o", "json", "--server", a.GRPC)
	require.NoError(t, err)
	var verdicts []struct {
		Event   struct{ At, ID string }
		Matched bool
	}
	require.NoError(t, json.Unmarshal([]byte(out), &verdicts))
	require.Len(t, verdicts, 5)
	for i, v := range verdicts {
		require.True(t, v.Matched)
		require.Equal(t, fmt.Sprintf("ev-%d", total-5+i), v.Event.ID, "the last five, oldest first")
		require.True(t, strings.HasPrefix(v.Event.At, "archive:"), v.Event.At)
	}

	out, err = run(t, nil, "archive", "replay", "--from", "1h", "--trigger", "backfill", "--rate", "300/s", "--detach", "--server", a.GRPC)
	require.NoError(t, err)
	id := regexp.MustCompile(`r[0-9a-f]{16}`).FindString(out)
	require.NotEmpty(t, id, out)
	testenv.Eventually(t, 20*time.Second, func() bool { return c.unique() >= 200 }, "the replay is under way")
	a.Kill()
	atKill := c.unique()
	require.Less(t, atKill, total, "killed mid-replay")

	b := startServe(t, args...)
	out, err = run(t, nil, "archive", "status", id, "--wait", "--server", b.GRPC)
	require.NoError(t, err)
	require.Regexp(t, `^replay `+id+` succeeded in .*: 1500 archived events read \(.*\), 1500 selected, queued 1500 deliveries into trigger backfill\n$`, out)
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() == total }, "every archived event delivered")
	t.Logf("replay across SIGKILL: %d delivered before the kill, %d duplicates", atKill, c.duplicates())
	require.LessOrEqual(t, c.duplicates(), 100, "duplicates bounded by one unfinished batch and the attempts in flight")
	require.Regexp(t, `"resumed_after":"[0-9]+-[0-9]+"`, b.Logs(), "the second server went on from the checkpoint")

	out, err = run(t, nil, "archive", "stats", "-o", "json", "--server", b.GRPC)
	require.NoError(t, err)
	var st struct {
		Enabled bool
		Events  int64
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.True(t, st.Enabled)
	require.EqualValues(t, total, st.Events, "replays are not archived again")
	b.stop(t)
}
