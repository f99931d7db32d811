package tree

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace, deepest first. dir is made absolute and its symlinks
// resolved, because mountinfo shows real paths.
func mountsUnder(dir string) ([]string, error) {
	real, err := realPath(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	defer f.Close()
	all, err := parseMountinfo(f)
	if err != nil {
		return nil, err
	}
	var under []string
	for _, m := range all {
		if m == real || strings.HasPrefix(m, real+"/") || real == "/" {
			under = append(under, m)
		}
	}
	// Deepest first, so that unmounting in order never hits a busy parent.
	slices.SortFunc(under, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(under), nil
}

// parseMountinfo returns the mount points (field 5) of a mountinfo file.
func parseMountinfo(r io.Reader) ([]string, error) {
	var points []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		points = append(points, unescapeMountPath(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return points, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// realPath is dir made absolute with its symlinks resolved as far as it
// exists.
func realPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	return abs, nil
}

// ensureNothingMounted fails when something is mounted below dir: walking
// or copying such a tree would reach into /proc, /sys or the host's /dev.
func ensureNothingMounted(dir string) error {
	m, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		return fmt.Errorf("%s has %d mounts below it (first %s); unmount them first (umount -R)", dir, len(m), m[len(m)-1])
	}
	return nil
}

// ensureNothingMountedBelow is ensureNothingMounted for a dir that may
// itself be a mount point, such as an overlay work tree.
func ensureNothingMountedBelow(dir string) error {
	m, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	real, err := realPath(dir)
	if err != nil {
		return err
	}
	var below []string
	for _, p := range m {
		if p != real {
			below = append(below, p)
		}
	}
	if len(below) > 0 {
		return fmt.Errorf("%s has %d mounts below it (first %s); unmount them first (umount -R)", dir, len(below), below[len(below)-1])
	}
	return nil
}

// RemoveTree is removeTree for other packages: the catalog removes a killed
// build's staging directory with it, where the overlay work tree may still
// be mounted. It is idempotent; on failure the mounts it could not detach
// and what is below them are left, and the error names them.
func RemoveTree(dir string) error { return removeTree(dir) }

// removeTree deletes dir like os.RemoveAll, but first detaches anything
// mounted below it and refuses when that fails: os.RemoveAll crosses mount
// points, and a bind mount of the host's /dev or /sys left by a killed
// chroot tool would otherwise be emptied on the host.
func removeTree(dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if len(mounts) > 0 {
		if err := ensureNothingMounted(dir); err != nil {
			return fmt.Errorf("refusing to remove %s: %w", dir, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
