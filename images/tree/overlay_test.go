package tree

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestOverlayWorkTree: the overlay shows the base tree, takes the build's changes in its upper
// directory only, clamps only their times, and leaves nothing mounted or on disk when removed.
func TestOverlayWorkTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	lower := t.TempDir()
	for p, c := range map[string]string{"etc/hostname": "builder\n", "etc/keep": "k", "var/log/syslog": "log line\n", "usr/bin/tool": "bin"} {
		if err := os.MkdirAll(filepath.Join(lower, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lower, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(lower, "usr/bin/tool"), future, future); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := MountOverlay(lower, dir)
	if err != nil {
		t.Skipf("no overlayfs here: %v", err)
	}
	defer o.Remove()
	if b, err := os.ReadFile(filepath.Join(o.Merged, "etc/keep")); err != nil || string(b) != "k" {
		t.Fatalf("the merged tree does not show the base: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(o.Merged, "etc/new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(o.Merged, "etc/keep")); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1700000000, 0)
	host := hostIdentity{names: []string{"builder"}}
	if err := hygieneWith(o.Merged, epoch, host, o.Upper); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{"/etc/new": true, "/etc/keep": true, "/var/log/syslog": true, "/usr/bin/tool": false, "/usr": false} {
		if got := o.InUpper(rel); got != want {
			t.Errorf("InUpper(%s) = %v, want %v", rel, got, want)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(o.Merged, "etc/new"), &st); err != nil || st.Mtim.Sec != epoch.Unix() {
		t.Errorf("a written file's mtime %d, want the epoch %d (%v)", st.Mtim.Sec, epoch.Unix(), err)
	}
	if fi, err := os.Stat(filepath.Join(lower, "usr/bin/tool")); err != nil || !fi.ModTime().Equal(future) {
		t.Errorf("hygiene changed the base tree: %v %v", fi.ModTime(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(lower, "var/log/syslog")); string(b) != "log line\n" {
		t.Errorf("the base tree's log was truncated: %q", b)
	}
	if err := o.Remove(); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountsUnder(dir); len(m) != 0 {
		t.Errorf("left mounted: %v", m)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	if err := o.Remove(); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}

// TestRemoveTreeDetachesAKilledBuildsOverlay: a staging directory whose overlay was never unmounted
// (its build was killed) is removed whole, and the base tree is untouched.
func TestRemoveTreeDetachesAKilledBuildsOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	lower := t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "file"), []byte("base"), 0o644); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(t.TempDir(), ".staging-1-abc")
	if err := os.Mkdir(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	o, err := MountOverlay(lower, staging)
	if err != nil {
		t.Skipf("no overlayfs here: %v", err)
	}
	defer o.Remove()
	if err := RemoveTree(staging); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(staging); !os.IsNotExist(err) {
		t.Errorf("the staging directory is still there: %v", err)
	}
	if m, _ := mountsUnder(filepath.Dir(staging)); len(m) != 0 {
		t.Errorf("left mounted: %v", m)
	}
	if b, err := os.ReadFile(filepath.Join(lower, "file")); err != nil || string(b) != "base" {
		t.Errorf("the base tree changed: %q %v", b, err)
	}
}
