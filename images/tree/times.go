package tree

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"
)

// utimensat(2) constants the syscall package does not export.
const (
	utimeOmit         = (1 << 30) - 2 // leave this timestamp as it is
	atFDCWD           = -100          // path is relative to the working directory (or absolute)
	atSymlinkNofollow = 0x100         // change a symlink itself, not its target
)

// ClampTimes is Hygiene's clamping of file times alone, for a tree to be clamped early: clamping
// the copy of a base tree before the role's steps run changes the files' ctimes once, before a
// reader that reuses hashes by ctime (the file index) takes its mark, rather than at the end.
// Hygiene clamps again; a second pass changes only what was touched in between. Errors are
// StepErrors of step "hygiene".
func ClampTimes(root string, epoch time.Time) error {
	return stepErr("hygiene", clampTimes(root, epoch))
}

// clampTimes sets every access and modification time in the tree that is
// later than epoch to epoch, without following symlinks (a link's own
// time is set, never its target's, which might be outside the tree).
// Times already older are kept: SOURCE_DATE_EPOCH is an upper bound, and
// the package files' own dates say something true about them. A
// directory is done after its entries, because reading it updates its
// access time.
func clampTimes(root string, epoch time.Time) error {
	limit := syscall.NsecToTimespec(epoch.UnixNano())
	var walk func(p string) error
	walk = func(p string) error {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			entries, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if err := walk(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
		}
		return clampOne(p, st, limit)
	}
	return walk(root)
}

func clampOne(p string, st syscall.Stat_t, limit syscall.Timespec) error {
	ts := [2]syscall.Timespec{{Nsec: utimeOmit}, {Nsec: utimeOmit}}
	change := false
	switch {
	case later(st.Atim, limit):
		ts[0], change = limit, true
	case st.Mode&syscall.S_IFMT == syscall.S_IFDIR:
		// A directory was just read, which may have moved its access time
		// to now: put back the one it had before.
		ts[0], change = st.Atim, true
	}
	if later(st.Mtim, limit) {
		ts[1], change = limit, true
	}
	if !change {
		return nil
	}
	if err := lutimesNano(p, &ts); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}

func later(a, b syscall.Timespec) bool {
	return a.Sec > b.Sec || (a.Sec == b.Sec && a.Nsec > b.Nsec)
}

// lutimesNano is utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW); the
// syscall package only offers the variant that follows symlinks.
func lutimesNano(path string, ts *[2]syscall.Timespec) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	dirfd := atFDCWD
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(dirfd),
		uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(ts)), atSymlinkNofollow, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
