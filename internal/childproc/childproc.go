package childproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStartTimeout is how long Start waits for the serving line when
// Config.StartTimeout is zero: a server built with -race on a loaded
// machine takes seconds to start.
const DefaultStartTimeout = 30 * time.Second

// maxLine is the longest stderr line read as a line (a log line with a
// stack trace is far shorter).
const maxLine = 1 << 20

// ErrStopTimeout is what Stop returns when the child did not exit within
// its grace period after SIGTERM and was killed.
var ErrStopTimeout = errors.New("childproc: no exit within the grace period after SIGTERM; killed")

// Config says what to run and what to do with its log.
type Config struct {
	// Exe is the program: a path, or a name looked up in PATH.
	Exe string
	// Args are its arguments (without the program's name).
	Args []string
	// Env ("KEY=value") is added to this process's environment; a key
	// given here wins over the inherited one.
	Env []string
	// Echo, when set, is called with every stderr line, in order, from the
	// goroutine that reads them. It must return soon: while it runs no
	// line is read, and a child whose stderr pipe is full blocks.
	Echo func(line string)
	// KeepLines is how many of the last stderr lines Logs and Tail keep;
	// zero keeps every line.
	KeepLines int
	// StartTimeout bounds the wait for the serving line;
	// DefaultStartTimeout when zero.
	StartTimeout time.Duration
}

// Process is a started child that served. Its methods may be called from
// any goroutine.
type Process struct {
	cmd   *exec.Cmd
	name  string // of the program, for errors
	addrs Addrs
	keep  int

	done chan struct{} // closed once the child was waited for
	werr error         // cmd.Wait's; read only after done

	mu    sync.Mutex
	lines []string // the last keep lines (all when keep is 0), maybe more until trimmed
}

// Start runs the child and waits for its serving line (see the package
// doc for what a failure leaves behind and what ctx bounds).
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if cfg.Exe == "" {
		return nil, errors.New("childproc: Config.Exe is empty")
	}
	if cfg.KeepLines < 0 {
		return nil, fmt.Errorf("childproc: Config.KeepLines: %d is negative", cfg.KeepLines)
	}
	cmd := exec.Command(cfg.Exe, cfg.Args...)
	if cfg.Env != nil {
		cmd.Env = append(os.Environ(), cfg.Env...)
	}
	DieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	name := filepath.Base(cfg.Exe)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("childproc: start %s: %w", name, err)
	}
	p := &Process{cmd: cmd, name: name, keep: cfg.KeepLines, done: make(chan struct{})}
	type served struct {
		addrs Addrs
		err   error
	}
	ready := make(chan served, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		up := false
		for sc.Scan() {
			line := sc.Text()
			p.record(line)
			if !up {
				if a, err := ParseServing(sc.Bytes()); !errors.Is(err, ErrNotServing) {
					up = true
					ready <- served{a, err}
				}
			}
			if cfg.Echo != nil {
				cfg.Echo(line)
			}
		}
		if sc.Err() != nil { // a line too long: drain, or the child blocks
			_, _ = io.Copy(io.Discard, stderr)
		}
		p.werr = cmd.Wait()
	}()

	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var fail error
	select {
	case s := <-ready:
		if s.err == nil {
			p.addrs = s.addrs
			return p, nil
		}
		fail = s.err
	case <-p.done:
		when := "before serving"
		if len(ready) > 0 {
			when = "right after serving" // both ready: useless all the same
		}
		return nil, fmt.Errorf("childproc: %s exited %s (%v); it logged:\n%s", name, when, p.werr, p.Logs())
	case <-timer.C:
		fail = fmt.Errorf("childproc: %s did not log its serving line within %v", name, timeout)
	case <-ctx.Done():
		fail = fmt.Errorf("childproc: waiting for %s to serve: %w", name, ctx.Err())
	}
	_ = p.Stop(time.Second)
	return nil, fmt.Errorf("%w; it logged:\n%s", fail, p.Logs())
}

// record keeps one stderr line.
func (p *Process) record(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	if p.keep > 0 && len(p.lines) >= 2*p.keep {
		// Trim in one copy per keep lines rather than per line.
		n := copy(p.lines, p.lines[len(p.lines)-p.keep:])
		clear(p.lines[n:])
		p.lines = p.lines[:n]
	}
}

// Addrs returns the addresses from the serving line.
func (p *Process) Addrs() Addrs { return p.addrs }

// Pid returns the child's process id (for reading /proc; signal it with
// Signal, which cannot hit a process that reused the id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the child; after its exit it returns
// os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed once the child has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited and been waited for.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the child to exit and returns its status as
// exec.Cmd.Wait does: nil for exit code 0, else an *exec.ExitError.
func (p *Process) Wait() error {
	<-p.done
	return p.werr
}

// Kill sends SIGKILL and returns once the child is gone. Wait reports how
// it ended (killed, unless it had exited already).
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM (the server's graceful shutdown: it drains, and
// writes a CPU profile when asked to) and waits up to grace for the child
// to exit; then it kills it and returns ErrStopTimeout. Otherwise it
// returns the child's exit status as Wait does, also when the child had
// exited before Stop was called.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.werr
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.werr
	case <-timer.C:
		p.Kill()
		return ErrStopTimeout
	}
}

// Logs returns the stderr lines kept so far, joined by newlines.
func (p *Process) Logs() string { return p.Tail(-1) }

// Tail returns the last n stderr lines kept (all of them when n is
// negative), joined by newlines.
func (p *Process) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines
	if p.keep > 0 && len(lines) > p.keep {
		lines = lines[len(lines)-p.keep:]
	}
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
