package disktest

import (
	"strings"
	"testing"
)

func TestTreeKeyDependsOnPackagesOnly(t *testing.T) {
	a := treeKey([]string{"a", "b"})
	if a != treeKey([]string{"a", "b"}) {
		t.Fatal("treeKey is not deterministic")
	}
	if a == treeKey([]string{"a", "b", "c"}) {
		t.Fatal("different package lists share a key")
	}
	if !strings.HasPrefix(a, Suite+"-") {
		t.Errorf("key %q does not name the suite", a)
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
