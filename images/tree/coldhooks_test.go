package tree

import (
	"context"
	"os"
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
