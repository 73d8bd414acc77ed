package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/internal/childproc"
)

// ackReplicas reads how many replicas --ack-after asks for: 0 for "" or
// "write", N for "replicas=N".
func ackReplicas(mode string) (int, error) {
	if mode == "" || mode == "write" {
		return 0, nil
	}
	if n, ok := strings.CutPrefix(mode, "replicas="); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 1 && v <= 8 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("ack after %q: want write or replicas=N (N from 1 to 8)", mode)
}

// replicaSet is the replicas the benchmark started for --ack-after
// replicas=N: redis-server processes without persistence, replicating the
// benchmark's Redis, on loopback ports, stopped when the benchmark ends
// (or dies: they get SIGTERM with their parent).
type replicaSet struct {
	cmds []*exec.Cmd
	dir  string
}

// startReplicas starts n replicas of the Redis at master (host:port) and
// waits until they are in sync.
func startReplicas(ctx context.Context, master string, n int) (*replicaSet, error) {
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchyard-bench-replica")
	if err != nil {
		return nil, err
	}
	rs := &replicaSet{dir: dir}
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			rs.stop()
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		d := fmt.Sprintf("%s/%d", dir, i)
		if err := os.MkdirAll(d, 0o755); err != nil {
			rs.stop()
			return nil, err
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", d, "--replicaof", host, port, "--replica-read-only", "yes")
		childproc.DieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			rs.stop()
			return nil, fmt.Errorf("start a replica (redis-server): %w", err)
		}
		rs.cmds = append(rs.cmds, cmd)
		if err := waitInSync(ctx, "127.0.0.1:"+strconv.Itoa(p)); err != nil {
			rs.stop()
			return nil, err
		}
	}
	return rs, nil
}

func waitInSync(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return nil
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("replica %s did not sync with its master", addr)
}

func (rs *replicaSet) stop() {
	for _, c := range rs.cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	_ = os.RemoveAll(rs.dir)
}
