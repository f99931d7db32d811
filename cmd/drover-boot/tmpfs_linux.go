package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const tmpfsMagic = 0x01021994 // TMPFS_MAGIC, linux/magic.h

// isTmpfs reports whether dir is on a tmpfs.
func isTmpfs(dir string) (bool, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return false, err
	}
	return int64(fs.Type) == tmpfsMagic, nil
}

// mountTmpfs mounts a small tmpfs at dir that no one but root can list, and from which nothing runs.
func mountTmpfs(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", "mode=0750,size=16m,nosuid,nodev,noexec", "tmpfs", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
