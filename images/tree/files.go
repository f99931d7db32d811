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

// File is one file to put into a tree.
type File struct {
	// Dest is the absolute path inside the tree. Symlinks in its parent
	// directories are followed as inside a chroot; an existing file or
	// symlink at Dest itself is replaced.
	Dest string
	// Source is a file on the build host to copy; exactly one of Source
	// and Content is set.
	Source  string
	Content *string
	// Mode is the permission bits, with fs.ModeSetuid, fs.ModeSetgid and
	// fs.ModeSticky allowed; 0 means 0644.
	Mode fs.FileMode
	// Owner is "user", "user:group" or "uid:gid", names resolved with the
	// tree's /etc/passwd and /etc/group; "" means root:root.
	Owner string
}

// InstallFiles writes files into the tree at root, in order. Missing
// parent directories are created as root:root 0755. Each file is written
// to a temporary name and renamed into place, so a failure never leaves a
// half-written file at Dest.
func InstallFiles(root string, files []File) error {
	for i, f := range files {
		if err := installFile(root, f); err != nil {
			return stepErr("files", fmt.Errorf("file %d (%s): %w", i+1, f.Dest, err))
		}
	}
	return nil
}

func installFile(root string, f File) error {
	if !path.IsAbs(f.Dest) || path.Clean(f.Dest) != f.Dest || f.Dest == "/" {
		return fmt.Errorf("destination %q is not a clean absolute file path", f.Dest)
	}
	if (f.Source == "") == (f.Content == nil) {
		return errors.New("set exactly one of Source and Content")
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("mode %v is not a plain file mode", mode)
	}
	uid, gid, err := resolveOwner(root, f.Owner)
	if err != nil {
		return err
	}
	data, err := fileData(f)
	if err != nil {
		return err
	}
	dir, err := mkdirIn(root, path.Dir(f.Dest))
	if err != nil {
		return err
	}
	dest := filepath.Join(dir, path.Base(f.Dest))
	if fi, err := os.Lstat(dest); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory in the tree", f.Dest)
	}
	tmp, err := os.CreateTemp(dir, ".drover-"+path.Base(f.Dest)+"-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", f.Dest, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, werr := tmp.Write(data)
	// Owner before mode: chown clears the setuid and setgid bits.
	if werr == nil {
		werr = tmp.Chown(uid, gid)
	}
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", f.Dest, werr)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("write %s: %w", f.Dest, err)
	}
	return nil
}

func fileData(f File) ([]byte, error) {
	if f.Content != nil {
		return []byte(*f.Content), nil
	}
	fi, err := os.Stat(f.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("source %s is not a regular file", f.Source)
	}
	data, err := os.ReadFile(f.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return data, nil
}

// mkdirIn creates dir (a path inside the tree) and its missing parents as
// root:root 0755, resolving existing symlinks as a chroot would, and
// returns its host path. The mode is set explicitly so that the build
// host's umask does not end up in the image.
func mkdirIn(root, dir string) (string, error) {
	host, err := resolveIn(root, dir, true)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, host)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("directory %s resolves outside the tree", dir)
	}
	cur := root
	for _, c := range splitPath(filepath.ToSlash(rel)) {
		if c == "." {
			continue
		}
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if err == nil {
			if !fi.IsDir() {
				return "", fmt.Errorf("%s: %s is not a directory in the tree", dir, strings.TrimPrefix(cur, root))
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Chmod(cur, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Lchown(cur, 0, 0); err != nil {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
	}
	return host, nil
}
