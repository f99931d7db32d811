package tree

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	in := "21 26 0:20 / /proc rw,relatime - proc proc rw\n" +
		"44 26 0:39 / /var/tmp/a\\040b/root/proc ro,relatime - proc proc ro\n" +
		"\n"
	got, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/proc", "/var/tmp/a b/root/proc"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestMountsUnder(t *testing.T) {
	m, err := mountsUnder("/proc")
	if err != nil || len(m) == 0 || m[len(m)-1] != "/proc" {
		t.Fatalf("mountsUnder(/proc) = %q, %v", m, err)
	}
	if err := ensureNothingMounted("/proc"); err == nil {
		t.Fatal("ensureNothingMounted(/proc) passed")
	}
	dir := t.TempDir()
	if err := ensureNothingMounted(dir); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "a/b/c"), "x")
	if err := removeTree(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Fatal("not removed")
	}
	if err := removeTree(filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
}
