package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// target is one secret file to write, its owner resolved and its template parsed.
type target struct {
	f        bootdata.SecretFile
	uid, gid int
	tmpl     *template.Template // nil without one
	content  secrets.Secret
}

// resolveTargets resolves every file's owner and parses its template (read from the image under
// root), before anything is fetched.
func resolveTargets(root string, files []bootdata.SecretFile) ([]target, error) {
	out := make([]target, 0, len(files))
	for _, f := range files {
		uid, gid, err := lookupOwner(f.OwnerOrDefault())
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", f.Name, err)
		}
		t := target{f: f, uid: uid, gid: gid}
		if f.Template != "" {
			if t.tmpl, err = loadTemplate(root, f.Name, f.Template); err != nil {
				return nil, err
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// lookupOwner resolves "user:group", each a name or a numeric ID.
func lookupOwner(owner string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(owner, ":")
	if !ok {
		return 0, 0, fmt.Errorf("owner %q: want user:group", owner)
	}
	if uid, err = strconv.Atoi(u); err != nil {
		usr, lerr := user.Lookup(u)
		if lerr != nil {
			return 0, 0, fmt.Errorf("owner %q: no user %s on this image", owner, u)
		}
		uid, _ = strconv.Atoi(usr.Uid)
	}
	if gid, err = strconv.Atoi(g); err != nil {
		grp, lerr := user.LookupGroup(g)
		if lerr != nil {
			return 0, 0, fmt.Errorf("owner %q: no group %s on this image", owner, g)
		}
		gid, _ = strconv.Atoi(grp.Gid)
	}
	return uid, gid, nil
}

// needsTraverse reports whether a file is for someone other than root (its owner, or its group when
// the mode lets the group read): they then need to pass through the directory, which belongs to
// root:root.
func needsTraverse(ts []target) bool {
	for _, t := range ts {
		if t.uid != 0 || (t.gid != 0 && t.f.Perm()&0o040 != 0) {
			return true
		}
	}
	return false
}

// prepareDir makes the secrets directory: on a tmpfs (mounting one when it is not, which needs root)
// unless mount is false, mode 0750 — or 0751 when a secret belongs to a user outside the root group,
// who must pass through to read it by name (the directory still cannot be listed, and each file is
// 0400 to its owner).
func prepareDir(dir string, mount, traverse bool) error {
	// The parent (/run/drover) holds the status file, which anyone may read, and must let a
	// secret's owner or group pass through to the secrets directory.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("secrets dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("secrets dir: %w", err)
	}
	if mount {
		tmp, err := isTmpfs(dir)
		if err != nil {
			return fmt.Errorf("secrets dir %s: %w", dir, err)
		}
		if !tmp {
			if os.Geteuid() != 0 {
				return fmt.Errorf("secrets dir %s is not on a tmpfs, and mounting one needs root: refusing to write secrets to a disk", dir)
			}
			if err := mountTmpfs(dir); err != nil {
				return fmt.Errorf("secrets dir %s: mounting a tmpfs: %w", dir, err)
			}
			if tmp, err := isTmpfs(dir); err != nil || !tmp {
				return fmt.Errorf("secrets dir %s: still not a tmpfs after mounting one (%v)", dir, err)
			}
		}
	}
	mode := os.FileMode(0o750)
	if traverse {
		mode = 0o751
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("secrets dir: %w", err)
	}
	return nil
}

// writeAtomic writes t's content to dir/name with t's mode and owner: a temporary file in dir (mode
// and owner set before the first byte), synced, renamed over name.
func writeAtomic(dir string, t target) (err error) {
	f, err := os.CreateTemp(dir, "."+t.f.Name+".tmp-*")
	if err != nil {
		return fmt.Errorf("secret %s: %w", t.f.Name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(t.f.Perm()); err != nil {
		return fmt.Errorf("secret %s: %w", t.f.Name, err)
	}
	if t.uid != os.Geteuid() || t.gid != os.Getegid() {
		if err := f.Chown(t.uid, t.gid); err != nil {
			return fmt.Errorf("secret %s: owner %s: %w", t.f.Name, t.f.OwnerOrDefault(), errors.Unwrap(err))
		}
	}
	if _, err := f.WriteString(t.content.Reveal()); err != nil {
		return fmt.Errorf("secret %s: writing: %w", t.f.Name, errors.Unwrap(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("secret %s: %w", t.f.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("secret %s: %w", t.f.Name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, t.f.Name)); err != nil {
		return fmt.Errorf("secret %s: %w", t.f.Name, err)
	}
	return nil
}
