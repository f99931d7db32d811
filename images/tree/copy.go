package tree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Copy makes dst an exact copy of the tree at src: owners, modes,
// timestamps, hardlinks, extended attributes (file capabilities such as
// ping's), device nodes, sockets and FIFOs, with cp -a --reflink=auto so
// that filesystems that can share blocks do. dst must not exist; its
// parent must. A cached base tree is copied before it is customized, so
// the cache is never changed. On failure nothing is left at dst.
func Copy(ctx context.Context, src, dst string) error {
	if err := copyTree(ctx, src, dst); err != nil {
		return stepErr("copy", err)
	}
	return nil
}

func copyTree(ctx context.Context, src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("source tree: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("source tree %s is not a directory", src)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("destination %s already exists", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("destination: %w", err)
	}
	if fi, err := os.Stat(filepath.Dir(dst)); err != nil || !fi.IsDir() {
		return fmt.Errorf("destination's parent %s is not a directory", filepath.Dir(dst))
	}
	// A mounted /proc or host /dev below src would be copied too.
	if err := ensureNothingMounted(src); err != nil {
		return err
	}
	f := run(ctx, command{
		args: []string{"cp", "-a", "--reflink=auto", "--", src, dst},
		env:  []string{"PATH=" + chrootPath, "LC_ALL=C"},
	})
	if f == nil {
		return nil
	}
	serr := f.asStepError("copy", fmt.Sprintf("cp -a %s %s", src, dst))
	if rerr := removeTree(dst); rerr != nil {
		serr.Err = errors.Join(serr.Err, rerr)
	}
	return serr
}
