package hostcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Free space thresholds: a bookworm tree, its raw disk and a qcow2 copy take
// a few GiB per role, so below 10 GiB a build of several roles may not fit,
// and below 2 GiB not even one will.
const (
	diskWarnBytes = 10 << 30
	diskFailBytes = 2 << 30
)

// checkDisk measures the space available to an unprivileged user (Bavail, not
// Bfree) on the file system of o.Dir, since builds need not run as root.
func checkDisk(_ context.Context, o Options) Result {
	dir, err := existingDir(o.Dir)
	if err != nil {
		return Result{
			Status: StatusFail,
			Detail: fmt.Sprintf("cannot find the build directory: %v", err),
			Fix:    "run drover doctor from a directory that exists",
		}
	}
	free, err := freeBytes(dir)
	if err != nil {
		return Result{
			Status: StatusFail,
			Detail: fmt.Sprintf("cannot measure free space: %v", err),
			Fix:    "check that " + dir + " is on a mounted, readable file system",
		}
	}
	return diskResult(dir, free)
}

// diskResult grades free bytes in dir against the thresholds; it is apart
// from checkDisk so tests can reach every grade without filling a disk.
func diskResult(dir string, free uint64) Result {
	detail := fmt.Sprintf("%s free in %s", gib(free), dir)
	switch {
	case free < diskFailBytes:
		return Result{Status: StatusFail, Detail: detail + ", under " + gib(diskFailBytes),
			Fix: "free disk space (drover gc, drover images prune) or build on a larger file system"}
	case free < diskWarnBytes:
		return Result{Status: StatusWarn, Detail: detail + ", under " + gib(diskWarnBytes),
			Fix: "free disk space (drover gc, drover images prune) before building several roles"}
	}
	return Result{Status: StatusOK, Detail: detail}
}

// existingDir returns the absolute path of dir or, when dir does not exist
// yet (a .drover cache before the first build), of its nearest existing
// parent, which is where the space would come from.
func existingDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for p := abs; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
		if p == filepath.Dir(p) {
			return "", fmt.Errorf("no existing directory above %s", abs)
		}
	}
}

// freeBytes returns the bytes available to unprivileged users under dir.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// gib formats n bytes as GiB with one decimal.
func gib(n uint64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
