package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// A layer is what turns the root filesystem of a base tree into the root
// filesystem of a tree made from it: the paths to remove, in order, and the
// entries to create or whose attributes to set, parents first. It is
// computed from the two trees alone (diffTrees), so the same pair of trees
// always gives the same layer, however the second tree was made.
type layer struct {
	removals []removal
	// zero lists base files whose inode the removals free: their data
	// blocks are zeroed before removal, so no byte of a removed file (an
	// SSH host key, a log) stays in the image's free space.
	zero    []string
	entries []layerEntry
}

// removal is one path of the base tree to unlink, children before their
// directory.
type removal struct {
	path string // "/"-rooted
	dir  bool
}

// layerEntry is a path of the new tree that is created (create true) or
// keeps its base inode and gets the new tree's attributes.
type layerEntry struct {
	path   string // "/"-rooted
	host   string // the file in the new tree
	create bool
	mode   fs.FileMode
	st     syscall.Stat_t
	mtime  time.Time // clamped to the epoch, whole seconds
	target string    // a symlink's
	// linkTo is an earlier created path of the same inode in the new tree:
	// a hard link to it is made instead of a new file.
	linkTo string
	// xattrs is set on the entry; xattrsRemoved are the base's names that
	// are gone.
	xattrs        map[string][]byte
	xattrsRemoved []string
}

// ContentHint says whether the new tree's path rel ("/"-rooted) may differ
// from the base tree's in any way: type, content, attributes, extended
// attributes, or for a directory its list of names (not its entries' own
// content). False promises that it is the same, and the path is not
// compared; a false answer for a changed path gives a wrong image. An
// overlay work tree answers from its upper directory, which holds every
// path written or removed; a copy from change times.
type ContentHint func(rel string) bool

// diffTrees computes the layer from the base tree to the new tree. epoch
// clamps modification times the way the base filesystem image does.
func diffTrees(base, tree string, hint ContentHint, epoch time.Time) (*layer, error) {
	d := &differ{base: base, tree: tree, hint: hint, epoch: epoch, l: &layer{},
		linked: map[[2]uint64]string{}, freed: map[[2]uint64]int{}}
	if err := d.walk("/", true); err != nil {
		return nil, fmt.Errorf("disk: layer over base tree %s: %w", base, err)
	}
	return d.l, nil
}

type differ struct {
	base, tree string
	hint       ContentHint
	epoch      time.Time
	l          *layer
	linked     map[[2]uint64]string // new tree inode -> first created path
	freed      map[[2]uint64]int    // base inode -> names removed
}

func (d *differ) walk(rel string, isDir bool) error {
	host := filepath.Join(d.tree, rel)
	if d.hint != nil && rel != "/" && !d.hint(rel) {
		if !isDir {
			return nil
		}
		return d.walkChildren(rel, host)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(host, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: host, Err: err}
	}
	var bst syscall.Stat_t
	berr := syscall.Lstat(filepath.Join(d.base, rel), &bst)
	if berr != nil && !errors.Is(berr, syscall.ENOENT) && !errors.Is(berr, syscall.ENOTDIR) {
		return &fs.PathError{Op: "lstat", Path: filepath.Join(d.base, rel), Err: berr}
	}
	inBase := berr == nil
	e, err := d.entry(rel, host, st)
	if err != nil {
		return err
	}
	switch {
	case !inBase:
		e.create = true
	case fileType(bst.Mode) != fileType(st.Mode):
		if err := d.remove(rel, bst); err != nil {
			return err
		}
		e.create = true
	default:
		same, err := d.sameObject(rel, e, bst)
		if err != nil {
			return err
		}
		if !same {
			if err := d.remove(rel, bst); err != nil {
				return err
			}
			e.create = true
		}
	}
	if e.create && e.mode.IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := d.linked[key]; ok {
			e.linkTo = first
		} else {
			d.linked[key] = rel
		}
	}
	if !e.create && inBase {
		changed, removed, err := d.attrsDiffer(rel, e, bst)
		if err != nil {
			return err
		}
		if !changed {
			e = nil
		} else {
			e.xattrsRemoved = removed
		}
	}
	if e != nil {
		d.l.entries = append(d.l.entries, *e)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil
	}
	names, err := readNames(host)
	if err != nil {
		return err
	}
	if inBase && fileType(bst.Mode) == syscall.S_IFDIR && !(e != nil && e.create) {
		baseNames, err := readNames(filepath.Join(d.base, rel))
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		for _, n := range baseNames {
			if !have[n] {
				child := joinRel(rel, n)
				var cst syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(d.base, child), &cst); err != nil {
					return &fs.PathError{Op: "lstat", Path: filepath.Join(d.base, child), Err: err}
				}
				if err := d.remove(child, cst); err != nil {
					return err
				}
			}
		}
	}
	return d.walkChildren(rel, host)
}

// walkChildren walks a directory's entries in name order.
func (d *differ) walkChildren(rel, host string) error {
	entries, err := os.ReadDir(host)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := d.walk(joinRel(rel, e.Name()), e.IsDir()); err != nil {
			return err
		}
	}
	return nil
}

// entry describes the new tree's path rel.
func (d *differ) entry(rel, host string, st syscall.Stat_t) (*layerEntry, error) {
	mt := time.Unix(st.Mtim.Sec, 0)
	if mt.After(d.epoch) {
		mt = d.epoch.Truncate(time.Second)
	}
	e := &layerEntry{path: rel, host: host, mode: modeOf(st), st: st, mtime: mt}
	if fileType(st.Mode) == syscall.S_IFLNK {
		t, err := os.Readlink(host)
		if err != nil {
			return nil, err
		}
		e.target = t
	}
	x, err := readXattrs(host, st)
	if err != nil {
		return nil, err
	}
	e.xattrs = x
	return e, nil
}

// sameObject is whether the base's inode at rel can stay: same symlink
// target, device number or file content (regular files are compared only
// when the hint says they may differ, or their sizes do).
func (d *differ) sameObject(rel string, e *layerEntry, bst syscall.Stat_t) (bool, error) {
	switch fileType(e.st.Mode) {
	case syscall.S_IFLNK:
		t, err := os.Readlink(filepath.Join(d.base, rel))
		return err == nil && t == e.target, err
	case syscall.S_IFCHR, syscall.S_IFBLK:
		return e.st.Rdev == bst.Rdev, nil
	case syscall.S_IFREG:
		if e.st.Size != bst.Size {
			return false, nil
		}
		return sameContent(filepath.Join(d.base, rel), e.host)
	}
	return true, nil
}

// attrsDiffer compares what the image keeps of an inode: permissions,
// owner, clamped mtime and extended attributes.
func (d *differ) attrsDiffer(rel string, e *layerEntry, bst syscall.Stat_t) (bool, []string, error) {
	bt := time.Unix(bst.Mtim.Sec, 0)
	if bt.After(d.epoch) {
		bt = d.epoch.Truncate(time.Second)
	}
	bx, err := readXattrs(filepath.Join(d.base, rel), bst)
	if err != nil {
		return false, nil, err
	}
	var removed []string
	for k := range bx {
		if _, ok := e.xattrs[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(removed)
	changed := bst.Mode != e.st.Mode || bst.Uid != e.st.Uid || bst.Gid != e.st.Gid || !bt.Equal(e.mtime) || len(removed) > 0
	for k, v := range e.xattrs {
		if !bytes.Equal(bx[k], v) {
			changed = true
		}
	}
	return changed, removed, nil
}

// remove queues the base's rel for removal, a directory's entries first.
func (d *differ) remove(rel string, bst syscall.Stat_t) error {
	if fileType(bst.Mode) == syscall.S_IFDIR {
		names, err := readNames(filepath.Join(d.base, rel))
		if err != nil {
			return err
		}
		for _, n := range names {
			child := joinRel(rel, n)
			var cst syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(d.base, child), &cst); err != nil {
				return &fs.PathError{Op: "lstat", Path: filepath.Join(d.base, child), Err: err}
			}
			if err := d.remove(child, cst); err != nil {
				return err
			}
		}
		d.l.removals = append(d.l.removals, removal{path: rel, dir: true})
		return nil
	}
	d.l.removals = append(d.l.removals, removal{path: rel})
	if fileType(bst.Mode) == syscall.S_IFREG && bst.Size > 0 {
		key := [2]uint64{uint64(bst.Dev), bst.Ino}
		d.freed[key]++
		if uint64(d.freed[key]) == uint64(bst.Nlink) {
			d.l.zero = append(d.l.zero, rel)
		}
	}
	return nil
}

func fileType(mode uint32) uint32 { return mode & syscall.S_IFMT }

// modeOf is the fs.FileMode of a stat, type bits included.
func modeOf(st syscall.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	if st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	switch fileType(st.Mode) {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	return m
}

func joinRel(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// readNames lists a directory's entry names, sorted.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}
