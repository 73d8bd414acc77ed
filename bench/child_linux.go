package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child server receive SIGTERM when the benchmark
// process dies (killed, or its output pipe closed), so no server is left
// running to skew the next measurement.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
