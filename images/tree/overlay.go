package tree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Overlay is a work tree that shares the cached base tree instead of
// copying it: an overlayfs mount with the base tree as its read-only lower
// layer and an empty upper directory that receives every file the build
// writes (copied up whole on its first change). Upper therefore lists every
// path that may differ from the base tree, which is what makes the later
// steps incremental (ChangedSince, InUpper).
//
// The base tree is never written. Overlay is not safe for concurrent use;
// Remove must be called once the tree is no longer needed, on failure too.
type Overlay struct {
	Lower  string // the base tree
	Merged string // the work tree: where commands run
	Upper  string // the changes
	work   string // overlayfs' own work directory
}

// MountOverlay mounts a work tree over lower in dir: dir/tree (merged),
// dir/upper and dir/overlay-work, none of which may exist. redirect_dir
// and metacopy are off, so a renamed directory is copied up whole and every
// changed file's data is in upper. On failure nothing is left mounted and
// the directories are removed; the error says why (an old kernel, a
// filesystem overlayfs cannot stack on), and the caller may copy instead.
func MountOverlay(lower, dir string) (*Overlay, error) {
	o := &Overlay{Lower: lower, Merged: filepath.Join(dir, "tree"), Upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "overlay-work")}
	for _, d := range []string{o.Merged, o.Upper, o.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			o.removeDirs()
			return nil, stepErr("copy", fmt.Errorf("overlay work tree: %w", err))
		}
	}
	// The merged root takes the upper root's mode and owner once copied up:
	// give upper the base root's, as a copy would have.
	if fi, err := os.Stat(lower); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		_ = os.Chmod(o.Upper, fi.Mode().Perm())
		_ = os.Chown(o.Upper, int(st.Uid), int(st.Gid))
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off", lower, o.Upper, o.work)
	if err := syscall.Mount("overlay", o.Merged, "overlay", 0, opts); err != nil {
		o.removeDirs()
		return nil, stepErr("copy", fmt.Errorf("overlay work tree over %s: mount: %w", lower, err))
	}
	return o, nil
}

// InUpper is whether the tree path rel ("/"-rooted) was written since the
// mount: only such a file can differ from the base tree's.
func (o *Overlay) InUpper(rel string) bool {
	_, err := os.Lstat(filepath.Join(o.Upper, rel))
	return err == nil
}

// Remove unmounts the work tree (first whatever a killed command left
// mounted below it) and deletes its directories. It is idempotent.
func (o *Overlay) Remove() error {
	if _, err := os.Lstat(o.Merged); err == nil {
		mounts, err := mountsUnder(o.Merged)
		if err != nil {
			return stepErr("copy", err)
		}
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil {
				_ = syscall.Unmount(m, syscall.MNT_DETACH)
			}
		}
		if err := ensureNothingMounted(o.Merged); err != nil {
			return stepErr("copy", fmt.Errorf("refusing to remove the work tree: %w", err))
		}
	}
	return stepErr("copy", o.removeDirs())
}

func (o *Overlay) removeDirs() error {
	var errs []error
	for _, d := range []string{o.Merged, o.Upper, o.work} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HygieneOverlay is Hygiene for an overlay work tree: the same removals on
// the merged tree, but times are clamped only on what the build wrote (the
// upper directory's entries, through the merged tree). Clamping the base
// tree's files would copy every one of them up; the root filesystem clamps
// their times itself (disk.BaseLayer).
func HygieneOverlay(o *Overlay, epoch time.Time) error {
	return stepErr("hygiene", hygieneWith(o.Merged, epoch, currentHost(), o.Upper))
}

// clampLayer clamps the times of the merged tree's paths that are in
// upper, entries before their directories.
func clampLayer(merged, upper string, epoch time.Time) error {
	limit := syscall.NsecToTimespec(epoch.UnixNano())
	var walk func(rel string) error
	walk = func(rel string) error {
		var ust syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(upper, rel), &ust); err != nil {
			return nil // removed since: nothing to clamp
		}
		if ust.Mode&syscall.S_IFMT == syscall.S_IFCHR && ust.Rdev == 0 {
			return nil // a whiteout: the path is gone from the merged tree
		}
		if ust.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			entries, err := os.ReadDir(filepath.Join(upper, rel))
			if err != nil {
				return err
			}
			for _, e := range entries {
				if err := walk(filepath.Join(rel, e.Name())); err != nil {
					return err
				}
			}
		}
		p := filepath.Join(merged, rel)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return nil
		}
		return clampOne(p, st, limit)
	}
	return walk("/")
}
