//go:build e2e

package tree

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EArm64Base builds an arm64 base through qemu-user binfmt emulation
// (about 150 s cold, cached afterwards) and runs a command in it. It
// mounts binfmt_misc and enables qemu-aarch64 on the host if needed. Run
// it alone with -run TestE2EArm64Base; -short skips it.
func TestE2EArm64Base(t *testing.T) {
	if testing.Short() {
		t.Skip("arm64 bootstrap is slow; skipped with -short")
	}
	c := testCache(t)
	spec := BaseSpec{Suite: "bookworm", Arch: "arm64", Mirror: os.Getenv("DROVER_TEST_MIRROR")}
	start := time.Now()
	dir, hit, err := c.Base(testContext(t, 30*time.Minute), spec, &testLog{t: t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 base (hit %v) in %s", hit, time.Since(start).Round(time.Millisecond))

	f, err := elf.Open(filepath.Join(dir, "usr/bin/dpkg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("dpkg is built for %v", f.Machine)
	}
	pkgs, err := Packages(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Arch != "arm64" && p.Arch != "all" {
			t.Errorf("package %s has architecture %s", p.Name, p.Arch)
		}
	}

	root := filepath.Join(t.TempDir(), "root")
	if err := Copy(testContext(t, 5*time.Minute), dir, root); err != nil {
		t.Fatal(err)
	}
	log := &testLog{t: t}
	if err := Run(testContext(t, 5*time.Minute), root, []string{"uname -m", "dpkg --print-architecture"}, log); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "\naarch64\n") || !strings.Contains(out, "\narm64\n") {
		t.Errorf("commands did not run as arm64:\n%s", out)
	}
	assertNothingMounted(t, root)
}
