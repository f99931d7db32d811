//go:build e2e

package tree

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestE2ECustomize(t *testing.T) {
	root := copyOfSmallBase(t)
	if fi, err := os.Lstat(filepath.Join(root, "dev/null")); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("Copy lost the device node dev/null: %v", err)
	}
	ctx := testContext(t, 5*time.Minute)
	log := &testLog{t: t}

	// A user made inside the tree, unknown to the host, owns a file.
	start := time.Now()
	if err := Run(ctx, root, []string{"useradd --system --uid 4321 --user-group --no-create-home drovertest"}, log); err != nil {
		t.Fatal(err)
	}
	unit := "[Unit]\nDescription=drover test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
	secret := "s3cret\n"
	if err := InstallFiles(root, []File{
		{Dest: "/etc/systemd/system/drover-hello.service", Content: &unit},
		{Dest: "/etc/drover/secret", Content: &secret, Owner: "drovertest", Mode: 0o600},
	}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/drover/secret")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 4321 {
		t.Fatalf("owner not from the tree's passwd: %v", err)
	}

	err := Run(ctx, root, []string{
		"systemctl enable drover-hello.service",
		"test -r /proc/self/status && test -c /dev/null && test -d /sys/class",
		`test "$(hostname)" = localhost`,
		"test ! -e /dev/sda && test ! -e /dev/vda",                     // not the host's /dev
		"/usr/sbin/policy-rc.d; test $? -eq 101",                       // services may not start
		"getent hosts deb.debian.org >/dev/null",                       // DNS through the lent resolv.conf
		`test -z "${AWS_SECRET_ACCESS_KEY:-}" && test "$HOME" = /root`, // no host environment
		"echo build > /tmp/scratch",
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commands ran in %s", time.Since(start).Round(time.Millisecond))
	if target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/drover-hello.service")); err != nil ||
		target != "/etc/systemd/system/drover-hello.service" {
		t.Errorf("systemctl enable: link %q, %v", target, err)
	}
	for _, p := range []string{"etc/resolv.conf", "usr/sbin/policy-rc.d"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s left after Run", p)
		}
	}
	assertNothingMounted(t, root)

	// A failing command: its exit code and last 20 lines, later commands skipped.
	err = Run(ctx, root, []string{
		"true",
		"for i in $(seq 1 30); do echo line$i; done; echo oops >&2; exit 3",
		"touch /never",
	}, log)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "run" || se.ExitCode != 3 || len(se.Tail) != 20 ||
		se.Tail[0] != "line12" || se.Tail[19] != "oops" || !strings.Contains(err.Error(), "command 2 of 3") {
		t.Fatalf("failing command: %#v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "never")); err == nil {
		t.Error("a command after the failure ran")
	}
	assertNothingMounted(t, root)

	// Cancellation: the command is killed, everything undone.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start = time.Now()
	err = Run(cctx, root, []string{"sleep 300 & sleep 300"}, log)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 15*time.Second {
		t.Fatalf("cancelled Run: %v after %s", err, time.Since(start))
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/sbin/policy-rc.d")); err == nil {
		t.Error("policy-rc.d left after a cancelled Run")
	}
	assertNothingMounted(t, root)

	// Hygiene, then the SBOM.
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")); err != nil {
		t.Fatalf("openssh-server made no host key to remove: %v", err)
	}
	epoch := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	start = time.Now()
	if err := Hygiene(root, epoch); err != nil {
		t.Fatal(err)
	}
	t.Logf("hygiene in %s", time.Since(start).Round(time.Millisecond))
	if b, err := os.ReadFile(filepath.Join(root, "etc/machine-id")); err != nil || len(b) != 0 {
		t.Errorf("machine-id %q, %v", b, err)
	}
	for _, pat := range []string{"var/lib/dbus/machine-id", "etc/ssh/ssh_host_*", "var/lib/apt/lists/*_*", "tmp/*", "etc/hostname", "etc/resolv.conf"} {
		if m, _ := filepath.Glob(filepath.Join(root, pat)); len(m) != 0 {
			t.Errorf("left after hygiene: %v", m)
		}
	}
	newest := time.Time{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
			if d.Type().IsRegular() && strings.HasPrefix(p, filepath.Join(root, "var/log")+"/") {
				if fi, _ := d.Info(); fi.Size() != 0 {
					t.Errorf("log %s not truncated", p)
				}
			}
		}
		return nil
	})
	if newest.After(epoch) {
		t.Errorf("newest mtime %v is after the epoch", newest)
	}

	pkgs, err := Packages(root)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chroot", root, "dpkg-query", "-W", "-f=${Version} ${Architecture}", "apt").Output()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pkgs {
		if p.Name == "apt" {
			found = true
			if p.Version+" "+p.Arch != string(out) {
				t.Errorf("SBOM apt %s %s, dpkg-query %q", p.Version, p.Arch, out)
			}
		}
	}
	if !found || len(pkgs) < 100 {
		t.Errorf("SBOM has %d packages, apt found %v", len(pkgs), found)
	}
	t.Logf("SBOM: %d packages, apt %s", len(pkgs), out)
}

func TestE2ECopyDiskFull(t *testing.T) {
	base := smallBase(t)
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
	dst := filepath.Join(small, "root")
	start := time.Now()
	err := Copy(testContext(t, time.Minute), base, dst)
	t.Logf("failed in %s: %v", time.Since(start).Round(time.Millisecond), err)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "copy" || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Lstat(dst); err == nil {
		t.Error("half a copy left behind")
	}
	hello := strings.Repeat("x", 32<<20)
	err = InstallFiles(small, []File{{Dest: "/big", Content: &hello}})
	if !errors.As(err, &se) || se.Step != "files" || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("InstallFiles on a full disk: %v", err)
	}
}
