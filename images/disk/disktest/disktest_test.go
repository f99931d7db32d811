package disktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestTreeKeyDependsOnPackagesAndArch(t *testing.T) {
	a := treeKey("amd64", []string{"a", "b"})
	if a != treeKey("amd64", []string{"a", "b"}) {
		t.Fatal("treeKey is not deterministic")
	}
	if a == treeKey("amd64", []string{"a", "b", "c"}) {
		t.Fatal("different package lists share a key")
	}
	if !strings.HasPrefix(a, Suite+"-") {
		t.Errorf("key %q does not name the suite", a)
	}
	// The amd64 key predates architectures: trees cached then stay valid.
	if want := Suite + "-4a69306af9106cba"; a != want {
		t.Errorf("amd64 key = %q, want %q", a, want)
	}
	arm := treeKey("arm64", []string{"a", "b"})
	if arm == a || !strings.HasPrefix(arm, Suite+"-arm64-") {
		t.Errorf("arm64 key %q (amd64 %q)", arm, a)
	}
}

func TestDefaultPackagesArch(t *testing.T) {
	if got := strings.Join(DefaultPackages(), ","); got != "initramfs-tools,linux-image-amd64,systemd-sysv,udev" {
		t.Errorf("DefaultPackages = %s", got)
	}
	if got := strings.Join(DefaultPackagesArch("arm64"), ","); !strings.Contains(got, "linux-image-arm64") {
		t.Errorf("DefaultPackagesArch(arm64) = %s", got)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("DROVER_TEST_CACHE", "/x/y")
	if got := CacheDir(); got != "/x/y" {
		t.Errorf("CacheDir = %q", got)
	}
	t.Setenv("DROVER_TEST_CACHE", "")
	if got := CacheDir(); got != "/var/tmp/drover-test-cache" {
		t.Errorf("CacheDir = %q", got)
	}
}

func TestSlimInitramfsHooks(t *testing.T) {
	if slimInitramfs(runtime.GOARCH) {
		t.Error("a native tree gets the small initramfs")
	}
	dir := t.TempDir()
	args, err := slimInitramfsHooks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 2 || !strings.Contains(args[1], `"$1/etc/initramfs-tools/hooks/drover-test"`) {
		t.Errorf("mmdebstrap options: %q", args)
	}
	hook, err := os.ReadFile(filepath.Join(dir, "initramfs-hook"))
	if err != nil || !strings.Contains(string(hook), "manual_add_modules virtio_pci") {
		t.Errorf("hook: %v %s", err, hook)
	}
	out, err := exec.Command("sh", "-n", filepath.Join(dir, "initramfs-hook")).CombinedOutput()
	if err != nil {
		t.Errorf("hook is not valid sh: %v %s", err, out)
	}
}
