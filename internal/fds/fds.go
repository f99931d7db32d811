// Package fds keeps file descriptors that drover inherited from whoever started it away from the
// tools it runs.
//
// Go opens its own files close-on-exec and os/exec passes a child only stdin, stdout, stderr and
// ExtraFiles, but descriptors inherited from the parent process stay open across exec. Packer, for
// one, starts its plugins with descriptors 3-5 open; they then reach mmdebstrap, which numbers its
// own pipes from 10 up, and dash cannot parse the redirections that needs (`cat >&10`).
package fds

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// CloseInheritedOnExec marks every open descriptor above stderr close-on-exec, so no program that
// this process runs inherits it; the process itself keeps using them. Call it first thing in main,
// before any goroutine could be running a child. It is idempotent. On an error some descriptors
// may already be marked, which is harmless.
func CloseInheritedOnExec() error {
	return closeOnExec("/proc/self/fd")
}

func closeOnExec(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fds: list open descriptors: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close() // the listing's own descriptor is among the names; it is close-on-exec and now gone
	if err != nil {
		return fmt.Errorf("fds: list open descriptors in %s: %w", dir, err)
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC); errno != 0 && errno != syscall.EBADF {
			return fmt.Errorf("fds: mark descriptor %d close-on-exec: %w", fd, errno)
		}
	}
	return nil
}
