package childproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envFake makes this test binary a fake server instead of running the
// tests: the children below are it, in the mode the variable names.
const envFake = "CHILDPROC_TEST_FAKE"

// envExit is the exit code of a fake server stopped by SIGTERM.
const envExit = "CHILDPROC_TEST_EXIT"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envFake); mode != "" {
		os.Exit(fake(mode))
	}
	os.Exit(m.Run())
}

// fake plays `switchyard serve` as far as this package sees it: JSON log
// lines on stderr, the serving line with addresses it listens on, a
// graceful exit on SIGTERM.
func fake(mode string) int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	switch mode {
	case "exit-early":
		log.Error("boom: no store")
		return 2
	case "silent":
		log.Info("starting", "pid", os.Getpid())
		<-term
		return 0
	case "bad-serving":
		log.Info(ServingMsg, "http", "127.0.0.1:1")
		<-term
		return 0
	case "long-line":
		// Longer than a line may be, then exit: a reader that stopped
		// reading would leave the child blocked on the full pipe.
		fmt.Fprintln(os.Stderr, strings.Repeat("x", 2*maxLine))
		log.Info("after the long line")
		return 0
	case "chatty":
		for i := range 100 {
			log.Info("line", "n", i)
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "parent":
		// Starts a serving grandchild, names it, serves, and is killed by
		// the test: the grandchild must not outlive it.
		gc, err := Start(context.Background(), Config{Exe: os.Args[0], Env: []string{envFake + "=serve"}})
		if err != nil {
			log.Error("grandchild", "err", err)
			return 1
		}
		log.Info("grandchild", "pid", gc.Pid())
	}
	hl, err1 := net.Listen("tcp", "127.0.0.1:0")
	gl, err2 := net.Listen("tcp", "127.0.0.1:0")
	if err := errors.Join(err1, err2); err != nil {
		log.Error("listen", "err", err)
		return 1
	}
	log.Info(ServingMsg, "http", hl.Addr().String(), "grpc", gl.Addr().String(), "sources", 0)
	log.Warn("serving for a test", "env", os.Getenv("CHILDPROC_TEST_EXTRA"))
	<-term
	log.Info("draining")
	code, _ := strconv.Atoi(os.Getenv(envExit))
	return code
}

// startFake starts this binary as a fake server in mode; it is killed
// when the test ends.
func startFake(t *testing.T, mode string, cfg Config) (*Process, error) {
	t.Helper()
	cfg.Exe = os.Args[0]
	cfg.Env = append(cfg.Env, envFake+"="+mode)
	p, err := Start(t.Context(), cfg)
	if p != nil {
		t.Cleanup(p.Kill)
	}
	return p, err
}

// gone reports whether pid no longer runs (a zombie that no one reaped
// yet counts as gone: it runs nothing).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

func poll(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartReadsAddresses(t *testing.T) {
	var mu sync.Mutex
	var echoed []string
	p, err := startFake(t, "serve", Config{
		Env:  []string{"CHILDPROC_TEST_EXTRA=from-config"},
		Echo: func(line string) { mu.Lock(); echoed = append(echoed, line); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	a := p.Addrs()
	for _, addr := range []string{a.HTTP, a.GRPC} {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("the child does not listen on %s: %v", addr, err)
		}
		_ = c.Close()
	}
	if a.HTTP == a.GRPC {
		t.Errorf("one address for both: %+v", a)
	}
	if p.Pid() <= 0 || p.Exited() {
		t.Errorf("pid %d, exited %v", p.Pid(), p.Exited())
	}
	// Config.Env reached the child, and Echo got its lines in order.
	poll(t, 10*time.Second, func() bool { return strings.Contains(p.Logs(), "from-config") }, "the warning line is read")
	mu.Lock()
	defer mu.Unlock()
	if len(echoed) != 2 || !strings.Contains(echoed[0], ServingMsg) || !strings.Contains(echoed[1], "from-config") {
		t.Errorf("echoed %q", echoed)
	}
}

func TestStartFailures(t *testing.T) {
	tests := map[string]struct {
		mode    string
		timeout time.Duration
		errHas  []string
	}{
		"exits before serving":    {mode: "exit-early", errHas: []string{"exited before serving", "exit status 2", "boom: no store"}},
		"bad serving line":        {mode: "bad-serving", errHas: []string{"field grpc: missing", ServingMsg}},
		"never serves":            {mode: "silent", timeout: 300 * time.Millisecond, errHas: []string{"did not log its serving line within 300ms", `"msg":"starting"`}},
		"line longer than a line": {mode: "long-line", errHas: []string{"exited before serving"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := startFake(t, tc.mode, Config{StartTimeout: tc.timeout})
			if err == nil || p != nil {
				t.Fatalf("got %v, %v; want an error", p, err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error without %q:\n%v", s, err)
				}
			}
			// A child that logged its pid is gone: Start stopped it.
			if m := regexp.MustCompile(`"pid":(\d+)`).FindStringSubmatch(err.Error()); m != nil {
				pid, _ := strconv.Atoi(m[1])
				if !gone(pid) {
					t.Errorf("child %d still runs", pid)
				}
			}
		})
	}
	t.Run("context done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		_, err := Start(ctx, Config{Exe: os.Args[0], Env: []string{envFake + "=silent"}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("no such program", func(t *testing.T) {
		if _, err := Start(t.Context(), Config{Exe: "/nonexistent/switchyard"}); err == nil || !strings.Contains(err.Error(), "start switchyard") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no program", func(t *testing.T) {
		if _, err := Start(t.Context(), Config{}); err == nil || !strings.Contains(err.Error(), "Config.Exe") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestKill(t *testing.T) {
	p, err := startFake(t, "serve", Config{})
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if !p.Exited() {
		t.Fatal("Kill returned before the child was gone")
	}
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("Wait: %v, want killed by SIGKILL", err)
	}
	if !gone(p.Pid()) {
		t.Errorf("pid %d still runs", p.Pid())
	}
	p.Kill() // again: nothing to do
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the exit: %v, want os.ErrProcessDone", err)
	}
	if err := p.Stop(time.Second); !errors.As(err, &ee) {
		t.Errorf("Stop after the exit: %v, want the exit status", err)
	}
}

func TestStop(t *testing.T) {
	tests := map[string]struct {
		mode     string
		exit     string
		wantCode int // -1: ErrStopTimeout
	}{
		"graceful":                {mode: "serve", exit: "0", wantCode: 0},
		"graceful, failing code":  {mode: "serve", exit: "3", wantCode: 3},
		"ignores SIGTERM, killed": {mode: "ignore-term", wantCode: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := startFake(t, tc.mode, Config{Env: []string{envExit + "=" + tc.exit}})
			if err != nil {
				t.Fatal(err)
			}
			grace := 30 * time.Second
			if tc.wantCode < 0 {
				grace = 300 * time.Millisecond
			}
			err = p.Stop(grace)
			if !p.Exited() {
				t.Fatal("Stop returned before the child was gone")
			}
			var ee *exec.ExitError
			switch {
			case tc.wantCode < 0:
				if !errors.Is(err, ErrStopTimeout) {
					t.Fatalf("Stop: %v, want ErrStopTimeout", err)
				}
			case tc.wantCode == 0:
				if err != nil {
					t.Fatalf("Stop: %v, want a clean exit", err)
				}
			default:
				if !errors.As(err, &ee) || ee.ExitCode() != tc.wantCode {
					t.Fatalf("Stop: %v, want exit code %d", err, tc.wantCode)
				}
			}
			if tc.wantCode >= 0 && !strings.Contains(p.Tail(1), "draining") {
				t.Errorf("last line %q, want the child's shutdown line", p.Tail(1))
			}
		})
	}
}

func TestLogsKeepTheLastLines(t *testing.T) {
	var mu sync.Mutex
	echoed := 0
	p, err := startFake(t, "chatty", Config{KeepLines: 10, Echo: func(string) { mu.Lock(); echoed++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	// 100 lines, the serving line, the warning: the last 10 are kept.
	poll(t, 10*time.Second, func() bool { return strings.Contains(p.Tail(1), "serving for a test") }, "the last line is read")
	lines := strings.Split(p.Logs(), "\n")
	if len(lines) != 10 || !strings.Contains(lines[0], `"n":92`) || !strings.Contains(lines[8], ServingMsg) {
		t.Fatalf("kept %d lines:\n%s", len(lines), p.Logs())
	}
	if got := p.Tail(2); !strings.HasPrefix(got, lines[8]+"\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("Tail(2) = %q", got)
	}
	if got := p.Tail(50); got != p.Logs() {
		t.Errorf("Tail beyond what is kept: %q", got)
	}
	if got := p.Tail(0); got != "" {
		t.Errorf("Tail(0) = %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if echoed != 102 {
		t.Errorf("echoed %d lines, want every one (102)", echoed)
	}
}

func TestLogsKeepEverythingByDefault(t *testing.T) {
	p, err := startFake(t, "chatty", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	logs := p.Logs()
	if n := strings.Count(logs, "\n") + 1; n != 103 || !strings.Contains(logs, `"n":0`) {
		t.Fatalf("kept %d lines, want 103:\n%s", n, logs)
	}
}

// TestChildDiesWithParent: a child whose parent is killed gets SIGTERM and
// exits (Linux only: the parent-death signal).
func TestChildDiesWithParent(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no parent-death signal here")
	}
	p, err := startFake(t, "parent", Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"msg":"grandchild","pid":(\d+)`).FindStringSubmatch(p.Logs())
	if m == nil {
		t.Fatalf("no grandchild pid in:\n%s", p.Logs())
	}
	pid, _ := strconv.Atoi(m[1])
	if gone(pid) {
		t.Fatalf("grandchild %d not running before its parent is killed", pid)
	}
	p.Kill()
	poll(t, 20*time.Second, func() bool { return gone(pid) }, fmt.Sprintf("grandchild %d gone after its parent was killed", pid))
}
