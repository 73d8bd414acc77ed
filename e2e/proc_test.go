package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchyard")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/switchyard")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build switchyard:", err)
		os.Exit(1)
	}
	code := testenv.Main(m) // stops the Redis Cluster tests shared
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a switchyard process started by a test.
type proc struct {
	cmd  *exec.Cmd
	HTTP string
	GRPC string
	mu   sync.Mutex
	logs []string
	done chan struct{}
}

// startServe runs `switchyard serve` with args and waits until it serves.
func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServe with env ("KEY=value") added to the
// process's environment.
func startServeEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	args = append([]string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, args...)
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "switchyard serving" {
				p.mu.Lock()
				p.HTTP, p.GRPC = m["http"].(string), m["grpc"].(string)
				p.mu.Unlock()
				once.Do(func() { close(ready) })
			}
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() { // what the server said, for a failure seen only in CI
			t.Logf("switchyard %v logged (last 40 lines):\n%s", args, p.tail(40))
		}
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("switchyard exited before serving:\n%s", p.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("switchyard did not start:\n%s", p.Logs())
	}
	return p
}

// Logs returns what the process logged so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// tail returns the last n lines the process logged.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs[max(0, len(p.logs)-n):], "\n")
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to 30s.
func (p *proc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("switchyard did not stop on SIGTERM:\n%s", p.Logs())
		p.kill()
	}
}

// run runs a switchyard client command and returns its stdout.
func run(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = stdin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("switchyard %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}
