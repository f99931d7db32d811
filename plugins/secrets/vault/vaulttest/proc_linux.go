package vaulttest

import "syscall"

// sysProcAttr makes the kernel kill the server if the test binary dies without cleaning up, so a
// crashed or killed test run leaves no Vault behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
