//go:build e2e && e2earm64

package main

import (
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
)

// TestE2EBuildARM64 builds an arm64 role with `drover build` on this amd64 host: mmdebstrap makes its
// tree through qemu-user (binfmt), the customization runs inside it the same way, and the disk boots
// under UEFI on an emulated arm64 machine with nginx answering through a host forward.
func TestE2EBuildARM64(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	fleetDir := t.TempDir()
	copyDir(t, "testdata/arm64", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")

	r := droverExec(t, nil, "--fleet", fleetFile, "build", "edge")
	if r.code != 0 {
		t.Fatalf("arm64 build failed: exit %d", r.code)
	}
	show := droverExec(t, nil, "--fleet", fleetFile, "--output", "json", "images", "show", "edge")
	var m images.Manifest
	if show.code != 0 || json.Unmarshal([]byte(show.stdout), &m) != nil {
		t.Fatalf("images show edge: exit %d\n%s", show.code, show.stdout)
	}
	if m.Arch != "arm64" {
		t.Errorf("manifest arch = %q, want arm64", m.Arch)
	}
	dir := filepath.Join(state, "images", strings.TrimPrefix(m.Identity, "sha256:"))
	raw := filepath.Join(dir, "disk.raw")

	t.Run("the image's programs are aarch64, drover-boot included", func(t *testing.T) {
		root := extractRoot(t, raw)
		for _, p := range []string{"usr/sbin/nginx", "usr/lib/systemd/systemd", "usr/local/bin/drover-boot"} {
			path := filepath.Join(t.TempDir(), filepath.Base(p))
			debugfs(t, root, "dump /"+p+" "+path)
			f, err := elf.Open(path)
			if err != nil {
				t.Errorf("/%s: %v", p, err)
				continue
			}
			if f.Machine != elf.EM_AARCH64 {
				t.Errorf("/%s is %v, want EM_AARCH64", p, f.Machine)
			}
			f.Close()
		}
		found := false
		for _, pkg := range m.Packages {
			if pkg.Name == "linux-image-arm64" || strings.HasPrefix(pkg.Name, "linux-image-") && strings.HasSuffix(pkg.Name, "-arm64") {
				found = true
			}
			if pkg.Arch != "arm64" && pkg.Arch != "all" {
				t.Errorf("package %s is for %s", pkg.Name, pkg.Arch)
			}
		}
		if !found {
			t.Error("the SBOM lists no arm64 kernel")
		}
	})

	t.Run("it boots under UEFI on arm64 and nginx answers", func(t *testing.T) {
		body, took := bootAndGet(t, raw, "uefi-arm64", 12*time.Minute)
		if !strings.Contains(body, "hello from an arm64 image") {
			t.Errorf("nginx served %q", body)
		}
		t.Logf("arm64: HTTP 200 after %s (TCG)", took.Round(time.Second))
	})
}
