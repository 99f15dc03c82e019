package bench

import "syscall"

// childProcAttr makes the kernel kill a hookd child with SIGKILL when the harness dies, so
// that no server outlives an interrupted run.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
