//go:build e2e

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
)

// TestE2EBuildWithInheritedDescriptors starts drover build the way Packer starts its plugin: with
// descriptors 3, 4 and 5 open and not close-on-exec, on a cold base-tree cache of its own, so that
// mmdebstrap runs under it (its shell scripts broke on inherited descriptors). The build succeeds,
// and a command of the role, run inside the tree, sees only stdin, stdout and stderr.
func TestE2EBuildWithInheritedDescriptors(t *testing.T) {
	// A cold base tree of its own and no VM: it runs beside the package's other parallel e2e tests.
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	fleetText := `role "fds" {
  image {
    base = "debian-bookworm"
    run  = ["echo drover-fds: $(ls /proc/self/fd | tr '\\n' ' ')"]
  }
}
`
	if err := os.WriteFile(fleetFile, []byte(fleetText), 0o644); err != nil {
		t.Fatal(err)
	}
	var extra []*os.File
	for range 3 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		extra = append(extra, f)
	}
	state := filepath.Join(dir, ".drover")
	cmd := exec.Command(filepath.Join(binDir, "drover"), "--fleet", fleetFile, "build", "fds")
	// A cache of its own: the base tree is built (mmdebstrap runs) under the inherited descriptors.
	cmd.Env = append(os.Environ(), "DROVER_BOOT_DIR="+binDir, "CI=true", "DROVER_CACHE_DIR="+filepath.Join(state, "cold-cache"))
	cmd.ExtraFiles = extra // descriptors 3, 4 and 5 in drover
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("drover build fds with descriptors 3-5 open: %v in %s\n%s", err, time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatalf("drover build with inherited descriptors failed: %v", err)
	}

	list, err := images.OpenCatalog(state).List()
	if err != nil || len(list) != 1 {
		t.Fatalf("catalog: %d images, %v", len(list), err)
	}
	m := list[0]
	log, err := os.ReadFile(filepath.Join(images.OpenCatalog(state).ImageDir(m.Identity), m.BuildLog))
	if err != nil {
		t.Fatal(err)
	}
	// ls lists 0-2 and the descriptor of the directory it reads (3); an inherited one would add more.
	seen := regexp.MustCompile(`(?m)^drover-fds: (.*)$`).FindSubmatch(log)
	if seen == nil {
		t.Fatalf("the role's command printed nothing into the build log:\n%s", log)
	}
	if got := string(bytes.TrimSpace(seen[1])); got != "0 1 2 3" {
		t.Errorf("a command in the tree sees descriptors %q, want 0 1 2 3 (ls's own listing is 3)", got)
	}
}
