package tree

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestColdTreeHooks(t *testing.T) {
	for _, tc := range []struct {
		suite  string
		merged bool
	}{{"bookworm", true}, {"trixie", true}, {"bullseye", false}, {"buster", false}} {
		n, err := BaseSpec{Suite: tc.suite, Arch: hostArch(), Packages: []string{"linux-image-amd64"}}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		b := build{spec: n, root: "/c/root", debs: "/c/debs", debsOut: "/c/out"}
		args, err := b.args()
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Join(args, "\n")
		if got := strings.Contains(line, "--hook-dir="+mergedUsrHookDir); got != tc.merged {
			t.Errorf("%s: merged-usr hook = %v, want %v", tc.suite, got, tc.merged)
		}
		// update-initramfs is a no-op from before the first package that is not essential until it is
		// restored, and the one initramfs is made after that, by the last hooks.
		add := strings.Index(line, "--essential-hook=chroot \"$1\" dpkg-divert --local --rename --add /usr/sbin/update-initramfs")
		remove := strings.Index(line, "dpkg-divert --local --rename --remove /usr/sbin/update-initramfs")
		create := strings.Index(line, "update-initramfs -c -k all")
		if add < 0 || remove < 0 || create < 0 || !(add < remove && remove < create) {
			t.Errorf("%s: the divert, its removal and the one initramfs are not all there in that order (%d, %d, %d)", tc.suite, add, remove, create)
		}
		if strings.Count(line, "update-initramfs -c -k all") != 1 {
			t.Errorf("%s: more than one initramfs made at the end", tc.suite)
		}
	}
}

// fakeMmdebstrap puts an mmdebstrap on PATH that runs script with its arguments in "$@".
func fakeMmdebstrap(t *testing.T, script string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mmdebstrap runs in a private mount namespace, which needs root")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mmdebstrap"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

func TestBootstrapSimulationBesideTheBuild(t *testing.T) {
	n, err := BaseSpec{Arch: hostArch(), Packages: []string{"nosuchpkg"}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	b := build{spec: n, root: t.TempDir() + "/root", log: &strings.Builder{}}

	// The simulation fails at once: the build, which would take a minute, is stopped, and the error
	// is the simulation's, naming the package.
	fakeMmdebstrap(t, `case "$*" in *--simulate*) echo "E: Unable to locate package nosuchpkg"; exit 100;; esac; sleep 60`)
	start := time.Now()
	err = b.bootstrap(context.Background(), []string{"mmdebstrap", "--mode=root"})
	if err == nil || !strings.Contains(err.Error(), "unknown package nosuchpkg") || !strings.Contains(err.Error(), "mmdebstrap --simulate") {
		t.Errorf("error = %v, want the simulation's unknown package", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the build was not stopped when the simulation failed: %s", took)
	}
	if !strings.Contains(b.log.(*strings.Builder).String(), "checking the package set") {
		t.Error("the simulation's output is not in the log")
	}

	// The build fails first: its error is returned, without waiting for the simulation.
	fakeMmdebstrap(t, `case "$*" in *--simulate*) sleep 60;; esac; echo "E: the build broke"; exit 1`)
	start = time.Now()
	err = b.bootstrap(context.Background(), []string{"mmdebstrap", "--mode=root"})
	if err == nil || strings.Contains(err.Error(), "--simulate") || !strings.Contains(err.Error(), "exited with code 1") {
		t.Errorf("error = %v, want the build's own", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a failed build waited for the simulation: %s", took)
	}

	// Both pass: the build is done (the simulation, slower here, is stopped: the set installed).
	fakeMmdebstrap(t, `case "$*" in *--simulate*) sleep 1;; esac; exit 0`)
	if err := b.bootstrap(context.Background(), []string{"mmdebstrap", "--mode=root"}); err != nil {
		t.Errorf("a passing build and simulation: %v", err)
	}
}

func TestInitramfsModulesPerArch(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		b := build{spec: BaseSpec{Arch: arch, Packages: []string{"linux-image-" + arch}}.normalized(), root: "/c/root", debs: "/c/debs", debsOut: "/c/out"}
		args, err := b.args()
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Join(args, "\n")
		if !strings.Contains(line, "echo MODULES=list") || !strings.Contains(line, " virtio_blk ") || !strings.Contains(line, " nvme ") {
			t.Errorf("%s: the initramfs is not made from the VM module list", arch)
		}
		if got := strings.Contains(line, "xen_blkfront"); got != (arch == "amd64") {
			t.Errorf("%s: Xen's block front end in the list = %v", arch, got)
		}
	}
	a := BaseSpec{Arch: "amd64", Packages: []string{"linux-image-amd64"}}
	if a.Key() == (BaseSpec{Arch: "arm64", Packages: []string{"linux-image-amd64"}}).Key() {
		t.Error("two architectures share a key")
	}
}

// TestDocFiltersWithoutTarfilter runs the extract hooks dpkgOpts give on a tree as mmdebstrap leaves
// it after extracting the essential packages unfiltered: the documentation is gone but for the
// copyright files and symbolic links (as dpkg's filters leave them), and the filters are in the
// tree's dpkg configuration for every later dpkg run. No path filter is a --dpkgopt, which would
// make mmdebstrap extract through mmtarfilter.
func TestDocFiltersWithoutTarfilter(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"usr/share/doc/bash/copyright", "usr/share/doc/bash/README", "usr/share/doc/bash/examples/x.sh",
		"usr/share/man/man1/bash.1.gz", "usr/share/info/bash.info.gz", "usr/bin/bash", "etc/dpkg/dpkg.cfg.d/99mmdebstrap"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("bash", filepath.Join(root, "usr/share/doc/bash-builtins")); err != nil {
		t.Fatal(err)
	}
	var ran int
	for _, o := range dpkgOpts() {
		if strings.HasPrefix(o, "--dpkgopt=path-") {
			t.Errorf("%s: a path filter as a dpkg option makes mmdebstrap extract through mmtarfilter", o)
		}
		hook, ok := strings.CutPrefix(o, "--extract-hook=")
		if !ok {
			continue
		}
		if out, err := exec.Command("sh", "-c", hook, "exec", root).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", hook, err, out)
		}
		ran++
	}
	if ran == 0 {
		t.Fatal("no extract hook")
	}
	for f, want := range map[string]bool{"usr/share/doc/bash/copyright": true, "usr/share/doc/bash-builtins": true, "usr/bin/bash": true,
		"usr/share/doc/bash/README": false, "usr/share/doc/bash/examples/x.sh": false, "usr/share/man/man1/bash.1.gz": false, "usr/share/info/bash.info.gz": false} {
		if _, err := os.Lstat(filepath.Join(root, f)); (err == nil) != want {
			t.Errorf("%s: kept = %v, want %v", f, err == nil, want)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(root, "etc/dpkg/dpkg.cfg.d/99mmdebstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "x\n" + strings.Join(docPathFilters, "\n") + "\n"; string(cfg) != want {
		t.Errorf("dpkg configuration = %q, want %q", cfg, want)
	}
}
