//go:build e2e

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
)

// packerVersion is the Packer release the plugin test runs: the last one without `packer plugins
// install --path`, whose users copy the plugin into a plugin directory.
const packerVersion = "v1.9.5"

// packerBinary returns a Packer binary: $DROVER_PACKER_BIN, else one built from the Go module proxy
// into DROVER_TEST_CACHE/packer-VERSION (default /var/tmp/drover-test-cache) on first use, about
// five minutes here, and reused afterwards, like bin/vault.
func packerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DROVER_PACKER_BIN"); p != "" {
		return p
	}
	cache := os.Getenv("DROVER_TEST_CACHE")
	if cache == "" {
		cache = "/var/tmp/drover-test-cache"
	}
	dir := filepath.Join(cache, "packer-"+packerVersion)
	bin := filepath.Join(dir, "packer")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	start := time.Now()
	cmd := exec.Command("go", "install", "github.com/hashicorp/packer@"+packerVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install github.com/hashicorp/packer@%s: %v\n%s", packerVersion, err, out)
	}
	t.Logf("built Packer %s in %s", packerVersion, time.Since(start).Round(time.Second))
	return bin
}

// TestE2EPacker is a Packer user's path: Packer 1.9.5 finds packer-plugin-drover in its plugin
// directory, validates a template with a drover-rootfs source, builds it (under Packer, the plugin
// process inherits descriptors that must not reach the commands it runs), and a second build of
// the same template is a no-op from the catalog. Its base tree is cold, in a cache_dir of its own,
// so mmdebstrap runs under Packer.
func TestE2EPacker(t *testing.T) {
	// A cold base tree of its own and no VM: it runs beside the package's other parallel e2e tests.
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	packer := packerBinary(t)
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "packer-plugin-drover"), "../packer-plugin-drover")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build packer-plugin-drover: %v\n%s", err, out)
	}
	describe, err := exec.Command(filepath.Join(pluginDir, "packer-plugin-drover"), "describe").Output()
	if err != nil || !regexp.MustCompile(`"version":"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?"`).Match(describe) {
		t.Errorf("describe does not report a semantic version: %v %s", err, describe)
	}
	state := filepath.Join(dir, "state")
	cacheDir := filepath.Join(dir, "cache")
	template := filepath.Join(dir, "tiny.pkr.hcl")
	text := fmt.Sprintf(`source "drover-rootfs" "tiny" {
  role      = "tiny"
  state_dir = %q
  cache_dir = %q
  agent_dir = %q
  formats   = ["raw"]
  run       = ["echo drover-fds: $(ls /proc/self/fd | tr '\\n' ' ')"]
  file {
    dest    = "/etc/motd"
    content = "built by packer\n"
  }
}

build {
  sources = ["source.drover-rootfs.tiny"]
}
`, state, cacheDir, binDir)
	if err := os.WriteFile(template, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, time.Duration) {
		t.Helper()
		cmd := exec.Command(packer, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+pluginDir, "PACKER_CONFIG_DIR="+filepath.Join(dir, "config"),
			"CHECKPOINT_DISABLE=1", "PACKER_NO_COLOR=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		t.Logf("packer %s: %v in %s\n%s", strings.Join(args, " "), err, took.Round(time.Millisecond), out.String())
		if err != nil {
			t.Fatalf("packer %s failed: %v", strings.Join(args, " "), err)
		}
		return out.String(), took
	}

	run("validate", template)
	out, cold := run("build", template)
	cat := images.OpenCatalog(state)
	list, err := cat.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("catalog after the build: %d images, %v", len(list), err)
	}
	m := list[0]
	if !strings.Contains(out, "tiny@"+m.ShortID()) {
		t.Errorf("packer's output does not name the image tiny@%s", m.ShortID())
	}
	log, err := os.ReadFile(filepath.Join(cat.ImageDir(m.Identity), m.BuildLog))
	if err != nil {
		t.Fatal(err)
	}
	if seen := descriptorsSeen(log); seen != "0 1 2 3" {
		t.Errorf("a command run by the plugin under Packer sees descriptors %q, want 0 1 2 3 (ls's own listing is 3)", seen)
	}

	out, noop := run("build", template)
	if !strings.Contains(out, "up to date ("+m.Identity+")") {
		t.Errorf("the second build is not answered from the catalog")
	}
	if list, _ := cat.List(); len(list) != 1 {
		t.Errorf("the no-op build changed the catalog: %d images", len(list))
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "trees")); err != nil {
		t.Errorf("the base tree is not in cache_dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "cache")); err == nil {
		t.Errorf("the build made a cache in its state directory, not in cache_dir %s", cacheDir)
	}
	t.Logf("packer build: cold %s, no-op %s", cold.Round(time.Second), noop.Round(100*time.Millisecond))
}
