//go:build !linux

package bench

import "syscall"

// childProcAttr returns nil: outside Linux a hookd child outlives a harness that dies
// without stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return nil
}
