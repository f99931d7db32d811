// Package disktest builds real Debian root filesystem trees for tests that
// need one (disk assembly, boot tests, provisioners) and caches them, so
// only the first run on a machine pays for mmdebstrap.
package disktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// Suite is the Debian release the trees are made of.
	Suite = "bookworm"
	// buildTimeout bounds one mmdebstrap run; a cold build takes 1-2
	// minutes with a fast mirror and much longer on a busy machine.
	buildTimeout = 30 * time.Minute
	// foreignBuildTimeout bounds a build for another architecture, whose
	// every maintainer script runs under qemu-user, several times slower
	// than natively.
	foreignBuildTimeout = 90 * time.Minute
	// deadlineMargin is kept free of the test binary's deadline for the
	// error report.
	deadlineMargin = 10 * time.Second
	// stopDelay is how long a cancelled mmdebstrap gets to clean up after
	// SIGTERM before it is killed.
	stopDelay = 20 * time.Second
)

// DefaultPackages make an amd64 tree that boots to a login prompt on its
// own: a kernel, an initramfs generator, systemd as init and udev.
func DefaultPackages() []string { return DefaultPackagesArch("amd64") }

// DefaultPackagesArch is DefaultPackages for the Debian architecture arch:
// only the kernel package is named after it.
func DefaultPackagesArch(arch string) []string {
	return []string{"initramfs-tools", "linux-image-" + arch, "systemd-sysv", "udev"}
}

// CacheDir is where trees are kept: $DROVER_TEST_CACHE, or
// /var/tmp/drover-test-cache.
func CacheDir() string {
	if d := os.Getenv("DROVER_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/drover-test-cache"
}

// BaseTree returns a Debian bookworm amd64 tree (mmdebstrap --variant=apt)
// with DefaultPackages and packages installed, building it on first use.
// Trees are cached by their package list and shared by every test and
// process: callers must not change the tree (copy it first). Building
// needs root (mmdebstrap --mode=root) and a Debian mirror; set
// DROVER_TEST_MIRROR to use another mirror than mmdebstrap's default.
func BaseTree(t testing.TB, packages ...string) string {
	t.Helper()
	return BaseTreeArch(t, "amd64", packages...)
}

// BaseTreeArch is BaseTree for the Debian architecture arch (amd64,
// arm64), with DefaultPackagesArch(arch). A tree of another architecture
// than the host's is built through qemu-user-static and binfmt_misc,
// which it sets up if needed; expect it to take several times longer. Its
// initramfs holds only the modules a virtio or NVMe ext4 root needs
// (initramfsModules), as a full one takes too long to make emulated.
func BaseTreeArch(t testing.TB, arch string, packages ...string) string {
	t.Helper()
	pkgs := slices.Sorted(slices.Values(append(DefaultPackagesArch(arch), packages...)))
	pkgs = slices.Compact(pkgs)
	if os.Geteuid() != 0 {
		t.Fatalf("disktest: building a tree needs root (mmdebstrap --mode=root)")
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Fatalf("disktest: mmdebstrap not found (apt-get install mmdebstrap)")
	}
	dir := filepath.Join(CacheDir(), "trees", treeKey(arch, pkgs))
	unlock := lock(t, dir+".lock")
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return filepath.Join(dir, "root")
	}
	if err := enableForeignArch(arch); err != nil {
		t.Fatalf("disktest: %v", err)
	}
	build(t, dir, arch, pkgs)
	return filepath.Join(dir, "root")
}

// treeKey names a tree by everything that goes into it. The amd64 key is
// unchanged from before trees had an architecture, so caches stay valid.
func treeKey(arch string, pkgs []string) string {
	spec := "suite=" + Suite + "\narch=" + arch + "\nvariant=apt\npackages=" + strings.Join(pkgs, ",") + "\n"
	if slimInitramfs(arch) {
		spec += "initramfs=" + strings.Join(initramfsModules, ",") + "\n"
	}
	h := sha256.Sum256([]byte(spec))
	name := Suite
	if arch != "amd64" {
		name += "-" + arch
	}
	return name + "-" + hex.EncodeToString(h[:8])
}

// qemuArch maps Debian architecture names to qemu-user's.
var qemuArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// enableForeignArch makes sure the kernel runs arch's binaries through
// qemu-user-static, which mmdebstrap needs to run maintainer scripts in a
// foreign tree: binfmt_misc mounted and qemu's handler enabled. Nothing is
// done for the host's own architecture.
func enableForeignArch(arch string) error {
	if arch == runtime.GOARCH {
		return nil
	}
	q, ok := qemuArch[arch]
	if !ok {
		return fmt.Errorf("unknown architecture %q", arch)
	}
	const binfmt = "/proc/sys/fs/binfmt_misc"
	if _, err := os.Stat(filepath.Join(binfmt, "register")); err != nil {
		if out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", binfmt).CombinedOutput(); err != nil {
			return fmt.Errorf("mount binfmt_misc: %w: %s", err, out)
		}
	}
	if st, err := os.ReadFile(filepath.Join(binfmt, "qemu-"+q)); err == nil && strings.HasPrefix(string(st), "enabled") {
		return nil
	}
	if out, err := exec.Command("update-binfmts", "--enable", "qemu-"+q).CombinedOutput(); err != nil {
		return fmt.Errorf("update-binfmts --enable qemu-%s: %w: %s (apt-get install qemu-user-static binfmt-support)", q, err, out)
	}
	return nil
}

// lock takes an exclusive flock on path, so parallel test processes build
// a tree once and wait for each other.
func lock(t testing.TB, path string) func() {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("disktest: %v", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("disktest: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("disktest: lock %s: %v", path, err)
	}
	return func() { f.Close() } // closing releases the lock
}

// build runs mmdebstrap into a temporary directory next to dir and renames
// it into place when complete, so a killed build leaves no half tree.
func build(t testing.TB, dir, arch string, pkgs []string) {
	t.Helper()
	tmp, err := filepath.Abs(dir + ".tmp")
	if err != nil {
		t.Fatalf("disktest: %v", err)
	}
	cleanupBuild(tmp)
	os.RemoveAll(dir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatalf("disktest: %v", err)
	}
	timeout := buildTimeout
	if arch != runtime.GOARCH {
		timeout = foreignBuildTimeout
	}
	ctx, cancel := buildContext(t, timeout)
	defer cancel()
	args := []string{"--mode=root", "--variant=apt", "--arch=" + arch,
		// Snapshot-style mirrors serve Release files past their Valid-Until.
		`--aptopt=Acquire::Check-Valid-Until "false"`, `--aptopt=Acquire::Check-Date "false"`,
		"--include=" + strings.Join(pkgs, ",")}
	if slimInitramfs(arch) {
		hooks, err := slimInitramfsHooks(tmp)
		if err != nil {
			t.Fatalf("disktest: %v", err)
		}
		args = append(args, hooks...)
	}
	args = append(args, Suite, filepath.Join(tmp, "root"))
	if m := os.Getenv("DROVER_TEST_MIRROR"); m != "" {
		args = append(args, m)
	}
	start := time.Now()
	t.Logf("disktest: building %s %s tree with %s (cached in %s)", Suite, arch, strings.Join(pkgs, ","), dir)
	out, err := mmdebstrap(ctx, args)
	if err != nil {
		cleanupBuild(tmp)
		t.Fatalf("disktest: mmdebstrap %s: %v (a cold build can outlast go test's default -timeout 10m; use -timeout 30m, 90m for a foreign architecture)\n%s",
			strings.Join(args, " "), err, tail(string(out), 30))
	}
	note := fmt.Sprintf("suite=%s arch=%s packages=%s built=%s took=%s\n", Suite, arch, strings.Join(pkgs, ","), time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
	if err := os.WriteFile(filepath.Join(tmp, "complete"), []byte(note), 0o644); err != nil {
		t.Fatalf("disktest: %v", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatalf("disktest: %v", err)
	}
	t.Logf("disktest: tree built in %s", time.Since(start).Round(time.Second))
}

// mmdebstrap runs mmdebstrap with args. When ctx ends it gets SIGTERM
// first, on which it unmounts what it mounted in the tree, and is killed
// only if it has not stopped within stopDelay.
func mmdebstrap(ctx context.Context, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopDelay
	return cmd.CombinedOutput()
}

// cleanupBuild removes a build directory, undoing first what a killed
// mmdebstrap leaves in it: processes still running chrooted in the tree
// (maintainer scripts under qemu-user run for many minutes) and its proc,
// sys and dev mounts, which would make the next build of the tree fail.
func cleanupBuild(tmp string) {
	killChrooted(filepath.Join(tmp, "root"))
	unmountUnder(tmp)
	os.RemoveAll(tmp)
}

// killChrooted kills every process whose root directory is root or below.
func killChrooted(root string) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		r, err := os.Readlink(filepath.Join(p, "root"))
		if err != nil || (r != root && !strings.HasPrefix(r, root+"/")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	slices.Sort(points)
	slices.Reverse(points) // dev/pts before dev
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// buildContext ends the build before the test binary's own deadline, so
// the failure says why instead of a panic dump.
func buildContext(t testing.TB, timeout time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(timeout)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Add(-deadlineMargin).Before(deadline) {
			deadline = td.Add(-deadlineMargin)
		}
	}
	return context.WithDeadline(context.Background(), deadline)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
