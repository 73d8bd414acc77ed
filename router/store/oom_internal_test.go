package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// An excerpt of Redis 7.0's INFO memory, as the server sends it (CRLF).
const infoMemory = "# Memory\r\nused_memory:67201456\r\nused_memory_human:64.09M\r\nused_memory_rss:80000000\r\n" +
	"maxmemory:67108864\r\nmaxmemory_human:64.00M\r\nmaxmemory_policy:noeviction\r\nmem_not_counted_for_evict:8192\r\n"

func TestParseMemoryInfo(t *testing.T) {
	m := parseMemoryInfo(infoMemory)
	require.Equal(t, MemoryState{Known: true, Used: 67201456, Max: 67108864, NotCounted: 8192, Policy: "noeviction"}, m)
	require.True(t, m.Full(), "used less what is not counted is over the limit")
	m.NotCounted = 100_000
	require.False(t, m.Full())
	m.Max = 0
	require.False(t, m.Full(), "no limit, never full")

	require.False(t, parseMemoryInfo("# Memory\r\nused_memory:1\r\n").Known, "a field missing")
	require.False(t, parseMemoryInfo("used_memory:x\r\nmaxmemory:1\r\nmaxmemory_policy:noeviction").Known, "a number that is not one")
	for policy, evicts := range map[string]bool{"noeviction": false, "volatile-lru": false, "volatile-ttl": false, "allkeys-lru": true, "allkeys-random": true} {
		require.Equal(t, evicts, MemoryState{Policy: policy}.Evicts(), policy)
	}
}

// FuzzParseMemoryInfo: whatever the server answers, parsing does not panic,
// and a state is Known only with the three fields it needs.
func FuzzParseMemoryInfo(f *testing.F) {
	f.Add(infoMemory)
	f.Add("")
	f.Add("used_memory:-1\nmaxmemory:99999999999999999999\nmaxmemory_policy:")
	f.Add("used_memory:1\nused_memory:2\nmaxmemory:1\n")
	f.Fuzz(func(t *testing.T, info string) {
		m := parseMemoryInfo(info)
		if m.Known {
			require.Contains(t, info, "used_memory:")
			require.Contains(t, info, "maxmemory:")
			require.True(t, strings.Contains(info, "maxmemory_policy:"))
		}
		_ = m.Full()
	})
}
