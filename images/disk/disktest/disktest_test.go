package disktest

import (
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
