package server

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		kind, err string
		addrs     []string
		master    string
		db        int
		user      string
		pass      string
		sentPass  string
		tls       bool
	}
	for raw, w := range map[string]want{
		"redis://localhost:6379/2":                                    {kind: RedisSingle, addrs: []string{"localhost:6379"}, db: 2},
		"rediss://u:p@cache:6380/0":                                   {kind: RedisSingle, addrs: []string{"cache:6380"}, user: "u", pass: "p", tls: true},
		"redis+cluster://h1:7000,h2:7001,h3:7002":                     {kind: RedisCluster, addrs: []string{"h1:7000", "h2:7001", "h3:7002"}},
		"rediss+cluster://u:p%40ss@h1:7000,h2:7001?pool_size=9":       {kind: RedisCluster, addrs: []string{"h1:7000", "h2:7001"}, user: "u", pass: "p@ss", tls: true},
		"redis+cluster://[::1]:7000,127.0.0.1:7001":                   {kind: RedisCluster, addrs: []string{"[::1]:7000", "127.0.0.1:7001"}},
		"redis+sentinel://s1:26379,s2:26380/mymaster":                 {kind: RedisSentinel, addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster"},
		"rediss+sentinel://:secret@s1:26379/m/3?sentinel_password=sp": {kind: RedisSentinel, addrs: []string{"s1:26379"}, master: "m", db: 3, pass: "secret", sentPass: "sp", tls: true},
		"redis+cluster://h1:7000/0":                                   {kind: RedisCluster, addrs: []string{"h1:7000"}},
		"redis+cluster://h1:7000/1":                                   {err: "only database 0"},
		"redis+cluster://":                                            {err: "no host"},
		"redis+cluster://h1":                                          {err: "want host:port"},
		"redis+cluster://h1:0":                                        {err: "port from 1 to 65535"},
		"redis+cluster://h1:7000,":                                    {err: "want host:port"},
		"redis+sentinel://s1:26379":                                   {err: "master-name"},
		"redis+sentinel://s1:26379/m/x":                               {err: "database"},
		"redis+sentinel://s1:26379/m/1/2":                             {err: "master-name"},
		"redis+cluster://h1:7000?nonsense=1":                          {err: "unexpected option"},
		"redis+queue://h:1":                                           {err: "scheme"},
		"http://h:1":                                                  {err: "scheme"},
		"localhost:6379":                                              {err: "want a URL"},
	} {
		t.Run(raw, func(t *testing.T) {
			got, err := ParseRedisURL(raw, false)
			if w.err != "" {
				require.ErrorContains(t, err, w.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, w.kind, got.Kind)
			switch got.Kind {
			case RedisSingle:
				require.Equal(t, w.addrs[0], got.Single.Addr)
				require.Equal(t, w.db, got.Single.DB)
				require.Equal(t, w.user, got.Single.Username)
				require.Equal(t, w.pass, got.Single.Password)
				require.Equal(t, w.tls, got.Single.TLSConfig != nil)
			case RedisCluster:
				require.Equal(t, w.addrs, got.Cluster.Addrs)
				require.Equal(t, w.user, got.Cluster.Username)
				require.Equal(t, w.pass, got.Cluster.Password)
				require.Equal(t, w.tls, got.Cluster.TLSConfig != nil)
				if w.tls {
					require.Empty(t, got.Cluster.TLSConfig.ServerName, "each node is checked against its own name")
				}
			case RedisSentinel:
				require.Equal(t, w.addrs, got.Failover.SentinelAddrs)
				require.Equal(t, w.master, got.Failover.MasterName)
				require.Equal(t, w.db, got.Failover.DB)
				require.Equal(t, w.pass, got.Failover.Password)
				require.Equal(t, w.sentPass, got.Failover.SentinelPassword)
				require.Equal(t, w.tls, got.Failover.TLSConfig != nil)
			}
			require.NotContains(t, strings.Join(strings.Fields(strings.Trim(fmtAttrs(got.describe()), "[]")), " "), "secret")
		})
	}
	t.Run("--redis-cluster", func(t *testing.T) {
		got, err := ParseRedisURL("redis://u:p@h1:7000,h2:7001", true)
		require.NoError(t, err)
		require.Equal(t, RedisCluster, got.Kind)
		require.Equal(t, []string{"h1:7000", "h2:7001"}, got.Cluster.Addrs)
		require.Equal(t, "p", got.Cluster.Password)
	})
}

func fmtAttrs(a []any) string {
	var b strings.Builder
	for _, x := range a {
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toStr(x), "\n", " "), "\t", " ")))
		b.WriteByte(' ')
	}
	return b.String()
}

func toStr(x any) string {
	switch v := x.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, ",")
	}
	return ""
}

// FuzzParseRedisURL: any input is parsed or refused, never a panic; what
// parses names its kind and the options of that kind only, and the log
// attributes never carry the password.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{"redis://localhost:6379/0", "rediss+cluster://u:pw@h1:1,h2:2", "redis+sentinel://:pw@s:1,t:2/m/1?sentinel_password=x",
		"redis+cluster://", "redis+sentinel:///", "redis+cluster://a:1,,b:2", "redis+cluster://%zz:1"} {
		f.Add(s, false)
	}
	f.Add("redis://h:1,h:2", true)
	f.Fuzz(func(t *testing.T, raw string, cluster bool) {
		got, err := ParseRedisURL(raw, cluster)
		if err != nil {
			return
		}
		set := 0
		for _, p := range []bool{got.Single != nil, got.Cluster != nil, got.Failover != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("%q: %d option sets", raw, set)
		}
		var pass string
		switch got.Kind {
		case RedisSingle:
			pass = got.Single.Password
		case RedisCluster:
			pass = got.Cluster.Password
		case RedisSentinel:
			pass = got.Failover.Password
		default:
			t.Fatalf("%q: kind %q", raw, got.Kind)
		}
		if len(pass) >= 4 && strings.Contains(fmtAttrs(got.describe()), pass) {
			t.Fatalf("%q: the log attributes show the password", raw)
		}
	})
}

func TestParseAckAfter(t *testing.T) {
	for in, want := range map[string]int{"": 0, "write": 0, "replicas=1": 1, "replicas=3": 3, "replicas=64": 64,
		"replicas=0": -1, "replicas=65": -1, "replicas=01": -1, "replicas=": -1, "replicas=x": -1, "replicas": -1, "Write": -1, "replicas=+1": -1} {
		n, err := ParseAckAfter(in)
		if want < 0 {
			require.Error(t, err, in)
			continue
		}
		require.NoError(t, err, in)
		require.Equal(t, want, n, in)
	}
}

func FuzzParseAckAfter(f *testing.F) {
	for _, s := range []string{"write", "replicas=2", "replicas=-1", "replicas=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseAckAfter(s)
		if err == nil && (n < 0 || n > 64) {
			t.Fatalf("%q: %d replicas", s, n)
		}
	})
}
