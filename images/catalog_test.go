package images

import (
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func addImage(t *testing.T, c *Catalog, role, identity string, created time.Time, pkgs []Package, files string) *Manifest {
	t.Helper()
	s, err := c.Stage(identity)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Identity: identity, Role: role, Created: created, Packages: pkgs}
	if files != "" {
		f, _ := os.Create(filepath.Join(s.Dir, "files.txt.gz"))
		zw := gzip.NewWriter(f)
		_, _ = zw.Write([]byte(files))
		_ = zw.Close()
		_ = f.Close()
		m.Files = "files.txt.gz"
	}
	if err := s.Commit(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func id(hexPrefix string) string {
	return "sha256:" + hexPrefix + strings.Repeat("0", 64-len(hexPrefix))
}

func TestCatalogResolveAndPrune(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	now := time.Now()
	addImage(t, c, "web", id("aaaa11"), now.Add(-3*time.Hour), nil, "")
	addImage(t, c, "web", id("aaaa22"), now.Add(-2*time.Hour), nil, "")
	addImage(t, c, "web", id("bbbb33"), now.Add(-1*time.Hour), nil, "")
	addImage(t, c, "db", id("cccc44"), now, nil, "")

	if !c.Has(id("aaaa11")) || c.Has(id("dddd55")) {
		t.Fatal("Has is wrong")
	}
	for ref, want := range map[string]string{
		"web": id("bbbb33"), "db": id("cccc44"), "web@aaaa22": id("aaaa22"), "aaaa11": id("aaaa11"),
		id("cccc44"): id("cccc44"), "sha256:bbbb33": id("bbbb33"),
	} {
		m, err := c.Resolve(ref)
		if err != nil || m.Identity != want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", ref, m, err, want)
		}
	}
	if _, err := c.Resolve("aaaa"); err == nil {
		t.Error("a 4-digit prefix resolved")
	}
	if _, err := c.Resolve("web@aaaa"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := c.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown role: %v", err)
	}

	// keep 1 per role, but the oldest web image is in use by a kept rollout.
	removed, err := c.Prune(1, func(identity string) bool { return identity == id("aaaa11") })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Identity != id("aaaa22") {
		t.Fatalf("pruned %v, want only aaaa22", removed)
	}
	list, _ := c.List()
	if len(list) != 3 {
		t.Errorf("%d images left, want 3", len(list))
	}
}

func TestStagingIsInvisibleAndDeadStagingIsRemoved(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	s, err := c.Stage(id("eeee66"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "manifest.json"), []byte(`{"identity":"x","role":"web"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.List(); len(list) != 0 {
		t.Fatalf("a staging directory is listed: %v", list)
	}
	// A staging directory of a process that no longer exists goes away at the next Stage.
	dead := filepath.Join(c.Dir, ".staging-999999999-eeee66-x")
	if err := os.Mkdir(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stage(id("ffff77")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead staging directory survived: %v", err)
	}
	if _, err := os.Stat(s.Dir); err != nil {
		t.Errorf("our own live staging directory was removed: %v", err)
	}
}

func TestDiffImages(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	a := addImage(t, c, "web", id("aaaa11"), time.Now(), []Package{{"nginx", "1.22", "amd64"}, {"curl", "7", "amd64"}, {"vim", "9", "amd64"}},
		"/etc/a\t-rw-r--r--\tx\n/etc/b\t-rw-r--r--\ty\n")
	b := addImage(t, c, "web", id("aaaa22"), time.Now(), []Package{{"nginx", "1.24", "amd64"}, {"curl", "7", "amd64"}, {"jq", "1.6", "amd64"}},
		"/etc/a\t-rw-r--r--\tz\n/etc/c\t-rw-r--r--\tw\n")
	d, err := c.DiffImages(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Added) != 1 || d.Added[0].Name != "jq" || len(d.Removed) != 1 || d.Removed[0].Name != "vim" ||
		len(d.Changed) != 1 || d.Changed[0] != (PackageChange{"nginx", "1.22", "1.24"}) {
		t.Errorf("packages: %+v", d)
	}
	want := []FileChange{{"/etc/a", "changed"}, {"/etc/b", "removed"}, {"/etc/c", "added"}}
	if len(d.Files) != 3 || d.Files[0] != want[0] || d.Files[1] != want[1] || d.Files[2] != want[2] {
		t.Errorf("files: %+v", d.Files)
	}
}

func TestKeepFailedLog(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	t0 := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	var kept []string
	for i := range 7 {
		staging, err := c.Stage("sha256:" + strings.Repeat("ab", 32))
		if err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(staging.Dir, "build.log")
		if err := os.WriteFile(log, []byte(fmt.Sprintf("attempt %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := c.KeepFailedLog("web", log, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := staging.Discard(); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, p)
	}
	if b, err := os.ReadFile(kept[6]); err != nil || string(b) != "attempt 6\n" {
		t.Errorf("newest log %s: %q %v", kept[6], b, err)
	}
	left, _ := filepath.Glob(filepath.Join(c.FailedLogDir(), "web", "*.log"))
	if len(left) != 5 || left[0] != kept[2] {
		t.Errorf("kept %v, want the newest 5 (from %s)", left, kept[2])
	}
	if list, err := c.List(); err != nil || len(list) != 0 {
		t.Errorf("the catalog lists %d images (%v) after failed builds", len(list), err)
	}
}
