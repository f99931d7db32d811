package tree

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// policyRCD makes invoke-rc.d and deb-systemd-invoke refuse to start
// services while a tree is customized (exit 101, "action forbidden"): a
// daemon started in a chroot would run on the build host. The marker line
// lets Hygiene recognize one left behind by a killed build.
const policyRCD = "#!/bin/sh\n" + policyRCDMarker + "\nexit 101\n"

const policyRCDMarker = "# drover: no service starts while an image is customized"

// policyRCDSaved is where an existing policy-rc.d waits while ours is in.
const policyRCDSaved = "/usr/sbin/policy-rc.d.drover-saved"

// chrootSetup is run by the host's /bin/sh in a private mount and UTS
// namespace. It mounts what programs in a chroot expect: a fresh /proc, a
// read-only /sys, a small /dev on tmpfs with only the harmless device
// nodes (not the host's disks), devpts, and a tmpfs /run. With $2 set it
// also puts a copy of the host's resolv.conf at that path inside the
// tree's /run, for a resolv.conf symlink such as systemd-resolved's. Then
// it runs the remaining arguments. The mounts die with the namespace.
const chrootSetup = `set -eu
root=$1 resolv=$2
shift 2
echo localhost >/proc/sys/kernel/hostname
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,mode=0755,size=16m tmpfs "$root/dev"
mknod -m 0666 "$root/dev/null" c 1 3
mknod -m 0666 "$root/dev/zero" c 1 5
mknod -m 0666 "$root/dev/full" c 1 7
mknod -m 0666 "$root/dev/random" c 1 8
mknod -m 0666 "$root/dev/urandom" c 1 9
mknod -m 0666 "$root/dev/tty" c 5 0
mkdir -m 0755 "$root/dev/pts"
mkdir -m 1777 "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/dev/shm"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$root/run"
mkdir -m 1777 "$root/run/lock"
if [ -n "$resolv" ]; then
	mkdir -p "$root${resolv%/*}"
	cat /etc/resolv.conf >"$root$resolv"
fi
exec "$@"
`

// chrootSession prepares a tree for commands and undoes the preparation.
type chrootSession struct {
	root   string // absolute host path of the tree
	resolv string // target in /run for a resolv.conf symlink, or ""
	undo   []func() error
}

// openChroot checks that root looks like a tree commands can run in and
// prepares it: our policy-rc.d (an existing one is set aside) and, when the
// tree has no /etc/resolv.conf, a copy of the host's so that commands can
// resolve the mirror's name. close undoes both; Hygiene catches what a
// killed process left.
func openChroot(root string) (*chrootSession, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s := &chrootSession{root: abs}
	sh, err := resolveIn(abs, "/bin/sh", true)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(sh); err != nil {
		return nil, fmt.Errorf("%s does not look like a root filesystem (no /bin/sh): %w", root, err)
	}
	for _, d := range []string{"proc", "sys", "dev", "run"} {
		if fi, err := os.Lstat(filepath.Join(abs, d)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%s does not look like a root filesystem (no /%s directory)", root, d)
		}
	}
	if err := s.installPolicyRCD(); err != nil {
		s.close()
		return nil, err
	}
	if err := s.provideResolvConf(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *chrootSession) installPolicyRCD() error {
	dir, err := mkdirIn(s.root, "/usr/sbin")
	if err != nil {
		return err
	}
	dest := filepath.Join(dir, "policy-rc.d")
	saved := filepath.Join(s.root, policyRCDSaved)
	if _, err := os.Lstat(dest); err == nil {
		if err := os.Rename(dest, saved); err != nil {
			return fmt.Errorf("set aside the tree's policy-rc.d: %w", err)
		}
		s.undo = append(s.undo, func() error { return os.Rename(saved, dest) })
	} else {
		s.undo = append(s.undo, func() error { return removeIfMissingOK(dest) })
	}
	if err := os.WriteFile(dest, []byte(policyRCD), 0o755); err != nil {
		return fmt.Errorf("write policy-rc.d: %w", err)
	}
	return os.Chmod(dest, 0o755)
}

// provideResolvConf makes DNS work inside the chroot without leaving the
// host's resolver settings in the image.
func (s *chrootSession) provideResolvConf() error {
	p := filepath.Join(s.root, "etc/resolv.conf")
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if !path.IsAbs(target) {
			target = path.Join("/etc", target)
		}
		if target = path.Clean(target); strings.HasPrefix(target, "/run/") {
			s.resolv = target
		}
		return nil
	case err == nil:
		return nil // the tree's own file, leave it
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil // no resolver on the host either: nothing to lend
	}
	if _, err := mkdirIn(s.root, "/etc"); err != nil {
		return err
	}
	if err := os.WriteFile(p, host, 0o644); err != nil {
		return fmt.Errorf("write a temporary resolv.conf: %w", err)
	}
	s.undo = append(s.undo, func() error {
		// Remove it only if a command did not replace it with its own.
		if now, err := os.ReadFile(p); err == nil && bytes.Equal(now, host) {
			return removeIfMissingOK(p)
		}
		return nil
	})
	return nil
}

// argv returns the command line that runs args (host programs) after the
// namespace's mounts are set up; run it with command.isolate.
func (s *chrootSession) argv(args ...string) []string {
	return append([]string{"/bin/sh", "-c", chrootSetup, "drover-chroot", s.root, s.resolv}, args...)
}

// close undoes openChroot's changes, newest first.
func (s *chrootSession) close() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		if err := s.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.undo = nil
	return errors.Join(errs...)
}

func removeIfMissingOK(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
