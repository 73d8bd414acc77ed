package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// servingMsg is the log message with which a server reports its addresses.
const servingMsg = "switchyard serving"

// target is the switchyard server under test.
type target struct {
	grpcAddr, httpAddr string
	scheme             string // of the HTTP listener: "http" unless "https"
	pid                int    // 0 when the server is not our child

	cmd    *exec.Cmd
	exited chan struct{}
	werr   error
}

// servingLine is the part of the server's JSON log lines the bench reads.
type servingLine struct {
	Msg   string `json:"msg"`
	Level string `json:"level"`
	HTTP  string `json:"http"`
	GRPC  string `json:"grpc"`
}

// parseServing reports the addresses in a "switchyard serving" log line.
func parseServing(line []byte) (grpcAddr, httpAddr string, ok bool) {
	var l servingLine
	if json.Unmarshal(line, &l) != nil || l.Msg != servingMsg || l.GRPC == "" {
		return "", "", false
	}
	return l.GRPC, l.HTTP, true
}

// startChild runs `exe serve …` with env added to the environment and waits
// for its "switchyard serving" line.
// The server logs at info so that line shows; of its other lines only
// warnings and errors are passed on to logw.
func startChild(ctx context.Context, exe string, args, env []string, logw io.Writer) (*target, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	dieWithParent(cmd)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	t := &target{pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	type addrs struct{ grpc, http string }
	ready := make(chan addrs, 1)
	var early bytes.Buffer // stderr before the server is up, for the error
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		up := false
		for sc.Scan() {
			line := sc.Bytes()
			if !up {
				if g, h, ok := parseServing(line); ok {
					up = true
					ready <- addrs{g, h}
					continue
				}
				mu.Lock()
				if early.Len() < 64<<10 {
					early.Write(line)
					early.WriteByte('\n')
				}
				mu.Unlock()
			}
			var l servingLine
			if json.Unmarshal(line, &l) == nil && (l.Level == "INFO" || l.Level == "DEBUG") {
				continue
			}
			fmt.Fprintf(logw, "server: %s\n", line)
		}
		t.werr = cmd.Wait()
		close(t.exited)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case a := <-ready:
		t.grpcAddr, t.httpAddr = a.grpc, a.http
		return t, nil
	case <-t.exited:
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("server exited before serving (%v): %s", t.werr, strings.TrimSpace(early.String()))
	case <-timer.C:
		t.stop(time.Second)
		return nil, errors.New("server did not report its addresses within 30s")
	case <-ctx.Done():
		t.stop(time.Second)
		return nil, ctx.Err()
	}
}

// alive reports whether the child still runs.
func (t *target) alive() bool {
	if t.cmd == nil {
		return true
	}
	select {
	case <-t.exited:
		return false
	default:
		return true
	}
}

// stop asks the child to shut down (SIGTERM, so a CPU profile is written)
// and kills it after grace.
func (t *target) stop(grace time.Duration) {
	if t.cmd == nil {
		return
	}
	select {
	case <-t.exited:
		return
	default:
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.exited:
	case <-timer.C:
		_ = t.cmd.Process.Kill()
		<-t.exited
	}
}
