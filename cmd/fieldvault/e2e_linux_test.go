//go:build linux

package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes a child server die with the test process, so that a
// crashed or timed-out test run leaves no server behind.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
