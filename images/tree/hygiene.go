package tree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Hygiene removes from the tree at root what must not ship in an image
// and clamps its file times to epoch (SOURCE_DATE_EPOCH):
//
//   - /etc/machine-id is left empty (so every machine makes its own at
//     first boot) and /var/lib/dbus/machine-id is removed;
//   - SSH host keys are removed, and when openssh-server is installed a
//     drop-in makes ssh.service create them (ssh-keygen -A) before sshd
//     starts, because Debian's unit does not and sshd refuses to start
//     without them;
//   - apt lists, apt's binary caches and downloaded .debs are removed;
//   - files under /var/log are truncated (journal files and rotated logs
//     removed), directories kept, so packages find their log files with
//     the owners and modes they expect;
//   - shell and editor history in /root and /home/* is removed, and /tmp
//     and /var/tmp are emptied;
//   - the build host's names and resolver are removed from /etc/hostname,
//     /etc/mailname, /etc/hosts and /etc/resolv.conf (mmdebstrap copies
//     the host's resolv.conf and hostname);
//   - dpkg's and debconf's *-old backups, ldconfig's aux-cache and a
//     policy-rc.d left by a killed customization are removed;
//   - every access and modification time later than epoch is set to epoch.
//
// Nothing may be mounted below root.
func Hygiene(root string, epoch time.Time) error {
	return stepErr("hygiene", hygiene(root, epoch, currentHost()))
}

func hygiene(root string, epoch time.Time, host hostIdentity) error {
	return hygieneWith(root, epoch, host, "")
}

// hygieneWith is hygiene; with upper set, root is an overlay's merged tree
// (itself a mount point) and only upper's paths get their times clamped.
func hygieneWith(root string, epoch time.Time, host hostIdentity, upper string) error {
	if epoch.IsZero() {
		return errors.New("no epoch given (SOURCE_DATE_EPOCH)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return fmt.Errorf("tree %s is not a directory", root)
	}
	mounted := ensureNothingMounted
	clamp := func(r string) error { return clampTimes(r, epoch) }
	if upper != "" {
		mounted = ensureNothingMountedBelow
		clamp = func(r string) error { return clampLayer(r, upper, epoch) }
	}
	if err := mounted(abs); err != nil {
		return err
	}
	steps := []struct {
		what string
		fn   func(string) error
	}{
		{"machine id", scrubMachineID},
		{"ssh host keys", scrubSSHHostKeys},
		{"apt lists and caches", scrubApt},
		{"logs", scrubLogs},
		{"shell history", scrubHistory},
		{"temporary files", scrubTmp},
		{"backups and caches", scrubBackups},
		{"policy-rc.d", scrubPolicyRCD},
		{"build host names", func(r string) error { return scrubHostIdentity(r, host) }},
		{"file times", clamp},
	}
	for _, s := range steps {
		if err := s.fn(abs); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// inTree is the host path of p in the tree, its parents resolved as in a
// chroot and its last component not followed, for removing or replacing.
func inTree(root, p string) (string, error) { return resolveIn(root, p, false) }

// removeInTree removes the files or symlinks at the given tree paths;
// missing ones are fine.
func removeInTree(root string, paths ...string) error {
	for _, p := range paths {
		host, err := inTree(root, p)
		if err != nil {
			return err
		}
		if err := removeIfMissingOK(host); err != nil {
			return err
		}
	}
	return nil
}

// globInTree removes the entries of dir (a tree path) whose names match
// pattern; with recursive, whole directories too.
func globInTree(root, dir, pattern string, recursive bool) error {
	host, err := resolveIn(root, dir, true)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if ok, _ := filepath.Match(pattern, e.Name()); !ok {
			continue
		}
		p := filepath.Join(host, e.Name())
		if e.IsDir() && !recursive {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

func scrubMachineID(root string) error {
	if err := removeInTree(root, "/var/lib/dbus/machine-id"); err != nil {
		return err
	}
	dir, err := mkdirIn(root, "/etc")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "machine-id")
	if err := removeIfMissingOK(p); err != nil {
		return err
	}
	// Empty, not missing: systemd then generates an id at boot, and
	// systemd's first-boot logic does not kick in for an image that is
	// already configured.
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		return err
	}
	return os.Chmod(p, 0o444)
}

func scrubApt(root string) error {
	lists, err := resolveIn(root, "/var/lib/apt/lists", true)
	if err != nil {
		return err
	}
	if err := removeFilesBelow(lists); err != nil {
		return err
	}
	if err := globInTree(root, "/var/cache/apt", "*.bin", false); err != nil {
		return err
	}
	if err := globInTree(root, "/var/cache/apt/archives", "*.deb", false); err != nil {
		return err
	}
	partial, err := resolveIn(root, "/var/cache/apt/archives/partial", true)
	if err != nil {
		return err
	}
	return removeFilesBelow(partial)
}

// removeFilesBelow removes every non-directory below dir, keeping the
// directories (apt expects lists/partial to exist).
func removeFilesBelow(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return os.Remove(p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func scrubLogs(root string) error {
	logs, err := resolveIn(root, "/var/log", true)
	if err != nil {
		return err
	}
	journal := filepath.Join(logs, "journal")
	// Logs that logrotate or a package rotated away.
	rotated := regexp.MustCompile(`(\.[0-9]+|\.gz|\.xz|\.bz2|\.zst|\.old|-[0-9]{8})$`)
	err = filepath.WalkDir(logs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return os.Remove(p) // a symlink or socket has no log to keep
		case strings.HasPrefix(p, journal+"/") || rotated.MatchString(d.Name()):
			// A truncated journal file or .gz is a corrupt one.
			return os.Remove(p)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func scrubHistory(root string) error {
	// Files that record what someone typed or viewed: a build's commands
	// must not ship in the image.
	historyFiles := []string{
		".bash_history", ".zsh_history", ".sh_history", ".history", ".python_history",
		".lesshst", ".viminfo", ".mysql_history", ".psql_history", ".sqlite_history",
		".node_repl_history", ".wget-hsts",
	}
	homes := []string{"/root"}
	if home, err := resolveIn(root, "/home", true); err == nil {
		entries, _ := os.ReadDir(home)
		for _, e := range entries {
			if e.IsDir() {
				homes = append(homes, "/home/"+e.Name())
			}
		}
	}
	for _, h := range homes {
		for _, f := range historyFiles {
			if err := removeInTree(root, h+"/"+f); err != nil {
				return err
			}
		}
	}
	return nil
}

func scrubTmp(root string) error {
	for _, d := range []string{"/tmp", "/var/tmp"} {
		if err := globInTree(root, d, "*", true); err != nil { // "*" matches dot files too
			return err
		}
	}
	return nil
}

func scrubBackups(root string) error {
	if err := globInTree(root, "/var/lib/dpkg", "*-old", false); err != nil {
		return err
	}
	if err := globInTree(root, "/var/cache/debconf", "*-old", false); err != nil {
		return err
	}
	return removeInTree(root, "/var/cache/ldconfig/aux-cache")
}

// scrubPolicyRCD removes our policy-rc.d if a killed Run or Ansible left
// it, putting back one it had set aside; it would keep every service of
// the image from ever being started by package scripts.
func scrubPolicyRCD(root string) error {
	p, err := inTree(root, "/usr/sbin/policy-rc.d")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(data), policyRCDMarker) {
		return nil
	}
	saved := filepath.Join(filepath.Dir(p), filepath.Base(policyRCDSaved))
	if _, err := os.Lstat(saved); err == nil {
		return os.Rename(saved, p)
	}
	return os.Remove(p)
}
