package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisProc is a redis-server process a test started, on a loopback port,
// without persistence unless its arguments ask for it. It dies with the
// test process (Pdeathsig) if nobody stops it.
type RedisProc struct {
	Port int
	Dir  string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is the server's address.
func (p *RedisProc) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRedisProc starts redis-server on a free port in dir with the extra
// arguments (e.g. "--cluster-enabled", "yes") and waits until it answers
// PING (a sentinel answers it too).
func StartRedisProc(dir string, extra ...string) (*RedisProc, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no", "--logfile", filepath.Join(dir, "redis.log")}, extra...)
	p := &RedisProc{Port: port, Dir: dir, args: args}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// Start starts the process again (after Kill) with the same arguments, on
// the same port, and waits until it answers.
func (p *RedisProc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("redis-server already running")
	}
	cmd := exec.Command("redis-server", p.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			return fmt.Errorf("redis-server %v exited: %s", p.args, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer: %w", p.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartReplicaOf starts the process again (after Kill) as a replica of
// master (host:port), as Sentinel would reconfigure it, without waiting
// for Sentinel to notice it is back.
func (p *RedisProc) StartReplicaOf(master string) error {
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.args = append(p.args, "--replicaof", host, port)
	p.mu.Unlock()
	return p.Start()
}

// Kill stops the process with SIGKILL and waits for it to be gone.
func (p *RedisProc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// RedisCluster is a Redis Cluster of three masters with one replica each
// on loopback ports.
type RedisCluster struct {
	Nodes []*RedisProc
	dir   string
}

// Addrs lists every node's address.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL is the cluster's redis+cluster:// URL (for `switchyard serve`).
func (c *RedisCluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") }

// Client returns a new cluster client; the caller closes it.
func (c *RedisCluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), PoolSize: 64, MaxRedirects: 16})
}

// Stop kills every node and removes their files.
func (c *RedisCluster) Stop() {
	for _, n := range c.Nodes {
		n.Kill()
	}
	_ = os.RemoveAll(c.dir)
}

// StartRedisCluster starts six redis-server processes with cluster mode on
// and joins them with `redis-cli --cluster create … --cluster-replicas 1`,
// then waits until every node sees the cluster as ok.
func StartRedisCluster() (*RedisCluster, error) {
	dir, err := os.MkdirTemp("", "switchyard-redis-cluster")
	if err != nil {
		return nil, err
	}
	c := &RedisCluster{dir: dir}
	fail := func(err error) (*RedisCluster, error) {
		c.Stop()
		return nil, err
	}
	for i := range 6 {
		nd := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return fail(err)
		}
		bus, err := FreePort()
		if err != nil {
			return fail(err)
		}
		n, err := StartRedisProc(nd, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		if err != nil {
			return fail(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out))
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return fail(err)
	}
	return c, nil
}

// WaitHealthy waits until every node reports cluster_state:ok and knows
// every other node, and every replica has synced with its master.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	var last string
	for {
		ok := true
		for _, n := range c.Nodes {
			info, err := nodeInfo(ctx, n.Addr(), "cluster", "info")
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))) {
				ok, last = false, n.Addr()+": "+info
				break
			}
			repl, err := nodeInfo(ctx, n.Addr(), "info", "replication")
			if err != nil || (strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up")) {
				ok, last = false, n.Addr()+": "+repl
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nodeInfo(ctx context.Context, addr string, args ...any) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return c.Do(ctx, args...).Text()
}

var shared struct {
	once    sync.Once
	cluster *RedisCluster
	err     error
}

// SharedCluster returns the package's Redis Cluster, started by the first
// call; Main stops it when the package's tests are done.
func SharedCluster(t testing.TB) *RedisCluster {
	t.Helper()
	shared.once.Do(func() {
		if _, err := exec.LookPath("redis-cli"); err != nil {
			shared.err = fmt.Errorf("redis-cli not found (the test command installs redis-tools): %w", err)
			return
		}
		shared.cluster, shared.err = StartRedisCluster()
	})
	if shared.err != nil {
		t.Fatalf("Redis Cluster: %v", shared.err)
	}
	return shared.cluster
}

// Main runs a package's tests, then stops the shared servers they
// started. Call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	return code
}

// StartSentinel starts a Redis Sentinel on a free port in dir, monitoring
// master (host:port) as name with the given quorum, counting the master
// down after 2.5 s without answer: longer than a client's retries of one
// command (a few dial attempts, a few backoffs), so that a client sees the
// outage rather than riding it out.
func StartSentinel(dir, name, master string, quorum int) (*RedisProc, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	host, mport, err := net.SplitHostPort(master)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nlogfile %s\n"+
		"sentinel monitor %s %s %s %d\nsentinel down-after-milliseconds %s 2500\n"+
		"sentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
		port, dir, filepath.Join(dir, "sentinel.log"), name, host, mport, quorum, name, name, name)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return nil, err
	}
	p := &RedisProc{Port: port, Dir: dir, args: []string{conf, "--sentinel"}}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// RedisSentinelGroup is a master, one replica and three sentinels watching
// them, on loopback ports.
type RedisSentinelGroup struct {
	Name      string
	Nodes     []*RedisProc // the master first, then the replica (the roles change with failovers)
	Sentinels []*RedisProc
}

// URL is the group's redis+sentinel:// URL.
func (g *RedisSentinelGroup) URL() string {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr()
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + g.Name
}

// Master asks the first sentinel that answers for the master's address.
func (g *RedisSentinelGroup) Master(ctx context.Context) (string, error) {
	var last error
	for _, s := range g.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		addr, err := c.GetMasterAddrByName(ctx, g.Name).Result()
		_ = c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names the master: %w", last)
}

// Node returns the data node listening on addr.
func (g *RedisSentinelGroup) Node(addr string) *RedisProc {
	for _, n := range g.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Stop kills every process.
func (g *RedisSentinelGroup) Stop() {
	for _, p := range append(g.Sentinels, g.Nodes...) {
		p.Kill()
	}
}

// StartSentinelGroup starts a master, a replica of it and three sentinels
// (quorum 2) in dir, and waits until the sentinels know the replica and
// each other, so that a failover can happen.
func StartSentinelGroup(dir string) (*RedisSentinelGroup, error) {
	g := &RedisSentinelGroup{Name: "sy-master"}
	fail := func(err error) (*RedisSentinelGroup, error) {
		g.Stop()
		return nil, err
	}
	sub := func(name string) (string, error) {
		d := filepath.Join(dir, name)
		return d, os.MkdirAll(d, 0o755)
	}
	d, err := sub("master")
	if err != nil {
		return fail(err)
	}
	m, err := StartRedisProc(d)
	if err != nil {
		return fail(err)
	}
	g.Nodes = append(g.Nodes, m)
	if d, err = sub("replica"); err != nil {
		return fail(err)
	}
	r, err := StartRedisProc(d, "--replicaof", "127.0.0.1", strconv.Itoa(m.Port))
	if err != nil {
		return fail(err)
	}
	g.Nodes = append(g.Nodes, r)
	for i := range 3 {
		if d, err = sub("sentinel" + strconv.Itoa(i)); err != nil {
			return fail(err)
		}
		s, err := StartSentinel(d, g.Name, m.Addr(), 2)
		if err != nil {
			return fail(err)
		}
		g.Sentinels = append(g.Sentinels, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.WaitReady(ctx); err != nil {
		return fail(err)
	}
	return g, nil
}

// WaitReplica waits until the master the sentinels name has a replica in
// sync.
func (g *RedisSentinelGroup) WaitReplica(ctx context.Context) error {
	_, err := g.waitReplica(ctx)
	return err
}

func (g *RedisSentinelGroup) waitReplica(ctx context.Context) (string, error) {
	var last string
	for {
		master, err := g.Master(ctx)
		if err != nil {
			last = err.Error()
		} else if repl, err := nodeInfo(ctx, master, "info", "replication"); err != nil || !strings.Contains(repl, "connected_slaves:1") || !strings.Contains(repl, "state=online") {
			last = master + ": " + repl
		} else {
			return master, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no replica in sync: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitReady waits until the master has a replica in sync and every
// sentinel knows that replica and the two other sentinels.
func (g *RedisSentinelGroup) WaitReady(ctx context.Context) error {
	var last string
	for {
		ok := true
		if _, err := g.waitReplica(ctx); err != nil {
			return err
		}
		for _, s := range g.Sentinels {
			if !ok {
				break
			}
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
			m, err := c.Master(ctx, g.Name).Result()
			_ = c.Close()
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" || m["flags"] != "master" {
				ok, last = false, fmt.Sprintf("sentinel %s: %v %v", s.Addr(), m, err)
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sentinel group not ready: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
