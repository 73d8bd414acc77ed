package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/switchyard-io/switchyard/internal/childproc"
)

// childLogLines is how many of a child server's last log lines are kept
// for the error when it fails to start.
const childLogLines = 1000

// target is the switchyard server under test.
type target struct {
	grpcAddr, httpAddr string
	scheme             string             // of the HTTP listener: "http" unless "https"
	proc               *childproc.Process // nil when the server is not our child
}

// startChild runs `exe serve …` with env added to the environment and waits
// until it serves. The server logs at info so that its serving line shows;
// of its lines only warnings and errors (and whatever is not a JSON log
// line, such as a panic) are passed on to logw.
func startChild(ctx context.Context, exe string, args, env []string, logw io.Writer) (*target, error) {
	p, err := childproc.Start(ctx, childproc.Config{
		Exe: exe, Args: args, Env: env, KeepLines: childLogLines,
		Echo: func(line string) {
			var l struct {
				Level string `json:"level"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && (l.Level == "INFO" || l.Level == "DEBUG") {
				return
			}
			fmt.Fprintf(logw, "server: %s\n", line)
		},
	})
	if err != nil {
		return nil, err
	}
	a := p.Addrs()
	return &target{grpcAddr: a.GRPC, httpAddr: a.HTTP, proc: p}, nil
}

// pid is the child's process id, 0 when the server is not our child.
func (t *target) pid() int {
	if t.proc == nil {
		return 0
	}
	return t.proc.Pid()
}

// alive reports whether the child still runs.
func (t *target) alive() bool { return t.proc == nil || !t.proc.Exited() }

// stop asks the child to shut down (SIGTERM, so a CPU profile is written)
// and kills it after grace.
func (t *target) stop(grace time.Duration) {
	if t.proc != nil {
		_ = t.proc.Stop(grace)
	}
}
