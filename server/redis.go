package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis deployments a --redis-url can name.
const (
	RedisSingle   = "single"   // one server (redis://, rediss://)
	RedisCluster  = "cluster"  // Redis Cluster (redis+cluster://, rediss+cluster://, or --redis-cluster)
	RedisSentinel = "sentinel" // a master found through Redis Sentinel (redis+sentinel://, rediss+sentinel://)
)

// RedisTarget is a parsed --redis-url: what kind of deployment it names and
// the go-redis options for it. Exactly one of Single, Cluster and Failover
// is set, after Kind.
type RedisTarget struct {
	Kind     string
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Failover *redis.FailoverOptions
}

// ParseRedisURL parses a --redis-url. The forms:
//
//	redis://[user:password@]host:port[/db][?options]             one server
//	rediss://…                                                   the same over TLS
//	redis+cluster://[user:password@]h1:p1,h2:p2,…[?options]      Redis Cluster: any reachable
//	rediss+cluster://…                                           node finds the others (TLS)
//	redis+sentinel://[user:password@]s1:p1,s2:p2,…/master[/db][?options]
//	rediss+sentinel://…                                          the master named, found through
//	                                                             the sentinels listed (TLS to both)
//
// For Sentinel, user and password are the master's (and its replicas');
// the sentinels' own credentials, when they have any, go in the options
// sentinel_username and sentinel_password. Options are go-redis' (pool_size,
// dial_timeout, read_timeout, …; skip_verify=true turns certificate checks
// off). With cluster set (--redis-cluster), a redis:// or rediss:// URL's
// hosts are cluster nodes, as with redis+cluster://. Redis Cluster has one
// database: a /db path is refused.
func ParseRedisURL(raw string, cluster bool) (RedisTarget, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return RedisTarget{}, errors.New("want a URL such as redis://host:6379/0, redis+cluster://h1:7000,h2:7001 or redis+sentinel://s1:26379,s2:26379/mymaster")
	}
	base, kind, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return RedisTarget{}, fmt.Errorf("scheme %q: want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", scheme)
	}
	switch {
	case kind == "" && cluster:
		kind = RedisCluster
	case kind == "":
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return RedisTarget{}, err
		}
		return RedisTarget{Kind: RedisSingle, Single: opt}, nil
	case kind != RedisCluster && kind != RedisSentinel:
		return RedisTarget{}, fmt.Errorf("scheme %q: want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", scheme)
	}
	// The host list is split off before url.Parse, which takes one host.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	addrs, err := splitHosts(hosts, kind)
	if err != nil {
		return RedisTarget{}, err
	}
	u, err := url.Parse(base + "://" + userinfo + "placeholder" + tail)
	if err != nil {
		return RedisTarget{}, err
	}
	if kind == RedisCluster {
		return parseClusterURL(u, base, addrs)
	}
	return parseSentinelURL(u, base, addrs)
}

// splitHosts splits a comma-separated list of host:port, each checked.
func splitHosts(hosts, kind string) ([]string, error) {
	if hosts == "" {
		return nil, fmt.Errorf("%s: no host given", kind)
	}
	var out []string
	for h := range strings.SplitSeq(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			return nil, fmt.Errorf("%s: host %q: want host:port", kind, h)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
			return nil, fmt.Errorf("%s: host %q: want host:port with a port from 1 to 65535", kind, h)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// goRedisURL rebuilds a URL go-redis parses: the first address as host,
// the others as addr options, the query kept.
func goRedisURL(u *url.URL, base string, addrs []string, path string) string {
	q := u.Query()
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	v := url.URL{Scheme: base, User: u.User, Host: addrs[0], Path: path, RawQuery: q.Encode()}
	return v.String()
}

func parseClusterURL(u *url.URL, base string, addrs []string) (RedisTarget, error) {
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return RedisTarget{}, fmt.Errorf("cluster: path %q: Redis Cluster has only database 0", u.Path)
	}
	opt, err := redis.ParseClusterURL(goRedisURL(u, base, addrs, ""))
	if err != nil {
		return RedisTarget{}, fmt.Errorf("cluster: %w", err)
	}
	if opt.TLSConfig != nil {
		// Each node's certificate is checked against the node's own name.
		opt.TLSConfig.ServerName = ""
		opt.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return RedisTarget{Kind: RedisCluster, Cluster: opt}, nil
}

func parseSentinelURL(u *url.URL, base string, addrs []string) (RedisTarget, error) {
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return RedisTarget{}, fmt.Errorf("sentinel: path %q: want /master-name or /master-name/db", u.Path)
	}
	q := u.Query()
	sentUser, sentPass := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	u2 := *u
	u2.User = nil
	u2.RawQuery = q.Encode()
	path := ""
	if len(parts) == 2 {
		path = "/" + parts[1]
	}
	opt, err := redis.ParseFailoverURL(goRedisURL(&u2, base, addrs, path))
	if err != nil {
		return RedisTarget{}, fmt.Errorf("sentinel: %w", err)
	}
	opt.MasterName = parts[0]
	opt.SentinelUsername, opt.SentinelPassword = sentUser, sentPass
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if opt.TLSConfig != nil {
		opt.TLSConfig.ServerName = ""
	}
	return RedisTarget{Kind: RedisSentinel, Failover: opt}, nil
}

// newRedisClient builds the client for t, with the pool and retry settings
// the server needs: enough connections for the group-commit writers, the
// dispatchers and the blocking fan-out reads, and a bounded number of
// retries of a command whose connection failed (go-redis never resends a
// transaction; see store.Store's transaction helper).
func newRedisClient(t RedisTarget) redis.UniversalClient {
	const poolSize, retries = 64, 2
	switch t.Kind {
	case RedisCluster:
		o := *t.Cluster
		o.PoolSize = max(o.PoolSize, poolSize)
		o.MaxRetries = retries
		// A slot being migrated answers TRYAGAIN (or ASK) until its keys
		// moved; each redirect is followed at once, each TRYAGAIN after a
		// backoff: enough of them to outlast the migration of one slot.
		o.MaxRedirects = max(o.MaxRedirects, 16)
		return redis.NewClusterClient(&o)
	case RedisSentinel:
		o := *t.Failover
		o.PoolSize = max(o.PoolSize, poolSize)
		o.MaxRetries = retries
		return redis.NewFailoverClient(&o)
	default:
		o := *t.Single
		o.PoolSize = max(o.PoolSize, poolSize)
		o.MaxRetries = retries
		return redis.NewClient(&o)
	}
}

// describe returns log attributes naming what t reaches, never a password.
func (t RedisTarget) describe() []any {
	switch t.Kind {
	case RedisCluster:
		return []any{"kind", t.Kind, "nodes", t.Cluster.Addrs, "tls", t.Cluster.TLSConfig != nil}
	case RedisSentinel:
		return []any{"kind", t.Kind, "sentinels", t.Failover.SentinelAddrs, "master", t.Failover.MasterName, "db", t.Failover.DB, "tls", t.Failover.TLSConfig != nil}
	default:
		return []any{"kind", RedisSingle, "addr", t.Single.Addr, "db", t.Single.DB, "tls", t.Single.TLSConfig != nil}
	}
}

// Values of --ack-after.
const (
	AckAfterWrite    = "write"
	ackAfterReplicas = "replicas="
)

// ParseAckAfter parses --ack-after: "write" (a publish is answered once the
// Redis master has its events: 0) or "replicas=N" (once N replicas have
// them too, by Redis WAIT: N, at least 1).
func ParseAckAfter(s string) (int, error) {
	if s == "" || s == AckAfterWrite {
		return 0, nil
	}
	if n, ok := strings.CutPrefix(s, ackAfterReplicas); ok {
		v, err := strconv.Atoi(n)
		if err == nil && v >= 1 && v <= 64 && strconv.Itoa(v) == n {
			return v, nil
		}
	}
	return 0, fmt.Errorf("want %q or %q with N from 1 to 64, got %q", AckAfterWrite, ackAfterReplicas+"N", s)
}
