package tree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// resolveIn maps p, a path as seen from inside the tree at root, to a path
// on the build host, following symlinks the way a chroot would: an
// absolute link (Debian has many, /etc/alternatives/*) restarts at root and
// ".." stops at root, so no link in the tree can point a write at the build
// host's files. Components that do not exist are kept as they are. With
// followLast false the last component is not followed, for operations that
// replace a symlink rather than write through it.
func resolveIn(root, p string, followLast bool) (string, error) {
	pending := splitPath(p)
	var done []string // resolved components below root, all existing non-links
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		if len(pending) == 0 && !followLast {
			done = append(done, c)
			break
		}
		host := filepath.Join(root, filepath.Join(done...), c)
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, c)
			done = append(done, pending...)
			pending = nil
			break
		}
		if err != nil {
			return "", fmt.Errorf("resolve %s in %s: %w", p, root, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("resolve %s in %s: too many levels of symbolic links", p, root)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", fmt.Errorf("resolve %s in %s: %w", p, root, err)
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		pending = append(splitPath(target), pending...)
	}
	// Clean the tail that did not exist, which may hold "..", without ever
	// climbing above root.
	rel := path.Clean("/" + strings.Join(done, "/"))
	return filepath.Join(root, rel), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
