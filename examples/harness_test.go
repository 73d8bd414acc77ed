package examples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// dir returns the absolute path of a directory under examples/.
func dir(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), name)
}

// tool returns the path of a command the examples need, failing the test
// with what to do when it is missing.
func tool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: %s (scripts/test.sh installs it)", name, hint)
	}
	return p
}

// run runs a command to completion, failing the test with its output when it
// fails.
func run(t *testing.T, timeout time.Duration, workdir string, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = workdir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), workdir, err, out)
	}
}

// npmBuild builds a Node example as its README says (npm ci, done by
// scripts/test.sh, then npm run build).
func npmBuild(t *testing.T, example string) string {
	t.Helper()
	tool(t, "node", "Node.js 20 or later")
	npm := tool(t, "npm", "npm, with Node.js")
	d := dir(example)
	if _, err := os.Stat(filepath.Join(d, "node_modules")); err != nil {
		t.Fatalf("%s has no node_modules: run `npm ci` there (scripts/test.sh does)", d)
	}
	run(t, 3*time.Minute, d, nil, npm, "run", "--silent", "build")
	return d
}

// python returns a Python 3 interpreter that imports grpc and protobuf.
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("SWITCHYARD_PYTHON")}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if p != "" && exec.Command(p, "-c", "import grpc, google.protobuf").Run() == nil {
			return p
		}
	}
	t.Fatalf("no Python 3 with grpc and protobuf (tried %q): apt-get install python3-grpcio python3-protobuf, "+
		"or set SWITCHYARD_PYTHON (scripts/test.sh installs them)", candidates)
	return ""
}

// proc is an example process started by a test; it is killed when the test
// ends.
type proc struct {
	cmd    *exec.Cmd
	addr   string        // the address a function printed it listens on
	stdout chan string   // its standard output, line by line
	exited chan struct{} // closed when it exited
	mu     sync.Mutex
	stderr bytes.Buffer
}

// Stderr returns what the process wrote on standard error so far.
func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

var listening = regexp.MustCompile(`listening on (\S+:\d+)`)

// start runs an example. With listens set it waits for the "listening on
// ADDR" line a function prints on standard error.
func start(t *testing.T, workdir string, env []string, listens bool, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = workdir, append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, stdout: make(chan string, 1024), exited: make(chan struct{})}
	addr := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.stdout <- sc.Text()
		}
		close(p.stdout)
	})
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	})
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	if listens {
		select {
		case p.addr = <-addr:
		case <-p.exited:
			t.Fatalf("%s exited before listening:\n%s", name, p.Stderr())
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not say where it listens:\n%s", name, p.Stderr())
		}
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit:\n%s", p.cmd.Path, p.Stderr())
	}
	return p.cmd.ProcessState.ExitCode()
}

// lineOf is a line printed by an example function: the invocation's
// metadata and the event in the CloudEvents JSON format.
type lineOf struct {
	Attempt        int             `json:"attempt"`
	Round          int             `json:"round"`
	Trigger        string          `json:"trigger"`
	IdempotencyKey string          `json:"idempotency_key"`
	Deadline       string          `json:"deadline"`
	Via            string          `json:"via"` // "unary" or "stream"
	ReceivedMS     int64           `json:"received_ms"`
	Event          json.RawMessage `json:"event"`
	ID             string          // the event's id
}

// lines collects an example function's lines until want reports having seen
// enough.
func (p *proc) lines(t *testing.T, want func([]lineOf) bool) []lineOf {
	t.Helper()
	var got []lineOf
	timeout := time.After(30 * time.Second)
	for !want(got) {
		select {
		case s, ok := <-p.stdout:
			if !ok {
				t.Fatalf("the function exited; it printed %d lines:\n%s", len(got), p.Stderr())
			}
			var l lineOf
			require.NoError(t, json.Unmarshal([]byte(s), &l), "line %q", s)
			var ev struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(l.Event, &ev), "line %q", s)
			l.ID = ev.ID
			got = append(got, l)
		case <-timeout:
			t.Fatalf("timed out with %d lines: %+v\nstderr:\n%s", len(got), got, p.Stderr())
		}
	}
	return got
}

// logBuffer collects a server's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// messages returns the msg of every line logged so far.
func (b *logBuffer) messages(t *testing.T) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		var m struct {
			Msg string `json:"msg"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m.Msg)
	}
	return out
}

// env is a Switchyard server on loopback (embedded store) and a client.
type env struct {
	srv    *server.Server
	client *sdk.Client
	http   string
	logs   *logBuffer
}

func startServer(t *testing.T) *env {
	t.Helper()
	logs := &logBuffer{}
	s, err := server.New(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Router: router.Config{SweepInterval: 100 * time.Millisecond},
	})
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := sdk.New(sdk.Config{Address: s.GRPCAddr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &env{srv: s, client: c, http: "http://" + s.HTTPAddr() + "/events", logs: logs}
}

// apply registers the triggers of a trigger file.
func (e *env) apply(t *testing.T, yaml string) {
	t.Helper()
	specs, err := trigger.Parse([]byte(yaml))
	require.NoError(t, err)
	for _, s := range specs {
		_, err := e.client.ApplyTrigger(context.Background(), trigger.ToProto(s))
		require.NoError(t, err)
	}
}

// received collects the events a Go function got.
type received struct {
	mu     sync.Mutex
	events map[string]event.Event
	infos  map[string][]function.Info
}

// wait returns the event of that id once it arrived.
func (r *received) wait(t *testing.T, id string) (event.Event, []function.Info) {
	t.Helper()
	var (
		ev    event.Event
		infos []function.Info
	)
	testenv.Eventually(t, 30*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		var ok bool
		ev, ok = r.events[id]
		infos = append([]function.Info(nil), r.infos[id]...)
		return ok
	}, "event %s", id)
	return ev, infos
}

// goFunction serves a Go function that records what it gets and runs block
// (if set) before acknowledging.
func goFunction(t *testing.T, block func(ctx context.Context) error) (*received, string) {
	t.Helper()
	rec := &received{events: map[string]event.Event{}, infos: map[string][]function.Info{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = function.ServeListener(ctx, lis, func(ctx context.Context, ev event.Event) (function.Result, error) {
			info, _ := function.FromContext(ctx)
			rec.mu.Lock()
			rec.events[ev.ID()] = ev
			rec.infos[ev.ID()] = append(rec.infos[ev.ID()], info)
			rec.mu.Unlock()
			if block != nil {
				return function.Result{}, block(ctx)
			}
			return function.Result{}, nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rec, lis.Addr().String()
}
