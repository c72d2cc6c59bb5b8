package testredis

import (
	"os/exec"
	"syscall"
)

// tieToParent kills the server when the test process dies, so a killed
// test binary leaves no redis-server behind.
func tieToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
