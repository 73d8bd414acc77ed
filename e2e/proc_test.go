package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/childproc"
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

// proc is a switchyard process started by a test, serving on HTTP and
// GRPC.
type proc struct {
	*childproc.Process
	HTTP string
	GRPC string
}

// startServe runs `switchyard serve` with args and waits until it serves.
func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServe with env ("KEY=value") added to the
// process's environment. The process is killed when the test ends.
func startServeEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	args = append([]string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, args...)
	cp, err := childproc.Start(t.Context(), childproc.Config{Exe: binary, Args: args, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cp.Kill()
		if t.Failed() { // what the server said, for a failure seen only in CI
			t.Logf("switchyard %v logged (last 40 lines):\n%s", args, cp.Tail(40))
		}
	})
	a := cp.Addrs()
	return &proc{Process: cp, HTTP: a.HTTP, GRPC: a.GRPC}
}

// stop sends SIGTERM and waits up to 30s, then kills the process and
// fails the test.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.Stop(30 * time.Second); errors.Is(err, childproc.ErrStopTimeout) {
		t.Errorf("switchyard did not stop on SIGTERM:\n%s", p.Logs())
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
