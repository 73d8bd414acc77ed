package childproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process receive SIGTERM when this process dies
// (see the package doc: Orphans). Call it before cmd.Start; Start does for
// its children, and the benchmark for the redis-server replicas it runs.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
