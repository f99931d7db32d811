package disk

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// overlayXattr marks the attributes overlayfs keeps for itself in an upper
// directory; they are never the image's.
const overlayXattr = "trusted.overlay."

// readXattrs reads a path's extended attributes. A symlink's are not read
// (the standard library's calls follow links; Debian trees put none on
// links) and a filesystem without them gives none.
func readXattrs(p string, st syscall.Stat_t) (map[string][]byte, error) {
	if fileType(st.Mode) == syscall.S_IFLNK {
		return nil, nil
	}
	size, err := syscall.Listxattr(p, nil)
	if err != nil {
		if errors.Is(err, syscall.ENOTSUP) {
			return nil, nil
		}
		return nil, &fs.PathError{Op: "listxattr", Path: p, Err: err}
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = syscall.Listxattr(p, buf)
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: p, Err: err}
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, overlayXattr) {
			continue
		}
		n, err := syscall.Getxattr(p, name, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		v := make([]byte, n)
		if n, err = syscall.Getxattr(p, name, v); err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		out[name] = v[:n]
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// sameContent compares two files byte for byte.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea != nil || eb != nil {
			doneA := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
			doneB := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
			if doneA && doneB {
				return true, nil
			}
			return false, errors.Join(ea, eb)
		}
	}
}
