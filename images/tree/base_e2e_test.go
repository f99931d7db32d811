//go:build e2e

package tree

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestE2EBaseCache(t *testing.T) {
	c := testCache(t)
	spec := smallSpec()
	start := time.Now()
	dir, hit, err := c.Base(testContext(t, 20*time.Minute), spec, &testLog{t: t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Base: hit %v in %s", hit, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	dir2, hit2, err := c.Base(testContext(t, time.Minute), spec, &testLog{t: t})
	if err != nil || !hit2 || dir2 != dir {
		t.Fatalf("second Base: %s, hit %v, %v", dir2, hit2, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cache hit took %s", d)
	}
	if filepath.Dir(dir) != filepath.Join(c.Dir, "trees") || !strings.HasPrefix(filepath.Base(dir), spec.Key()) {
		t.Errorf("tree at %s, want trees/<key>[-<archive state>]", dir)
	}
	// The cached tree carries nothing of the build host.
	for _, p := range []string{"etc/resolv.conf", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s in the cached tree", p)
		}
	}
	if lists, _ := filepath.Glob(filepath.Join(dir, "var/lib/apt/lists/*_Packages")); len(lists) != 0 {
		t.Errorf("apt lists in the base: %v", lists)
	}
	if src, _ := os.ReadFile(filepath.Join(dir, "etc/apt/sources.list")); !strings.Contains(string(src), spec.MirrorURL()) {
		t.Errorf("sources.list = %q", src)
	}
	debs, _ := filepath.Glob(filepath.Join(c.Dir, "debs/bookworm-amd64/apt_*.deb"))
	if len(debs) == 0 {
		t.Error("no downloaded packages kept")
	}
	if tmp, _ := filepath.Glob(filepath.Join(c.Dir, "trees", spec.Key()+"*.tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary build dirs left: %v", tmp)
	}
	assertNothingMounted(t, dir)
}

func TestE2EUnknownPackage(t *testing.T) {
	c := testCache(t)
	spec := BaseSpec{Suite: "bookworm", Arch: "amd64", Mirror: os.Getenv("DROVER_TEST_MIRROR"), Packages: []string{"drover-no-such-package"}}
	start := time.Now()
	_, _, err := c.Base(testContext(t, 10*time.Minute), spec, &testLog{t: t})
	t.Logf("failed in %s: %v", time.Since(start).Round(time.Millisecond), err)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "bootstrap" || se.ExitCode == 0 || len(se.Tail) == 0 ||
		!strings.HasPrefix(err.Error(), "tree: bootstrap: unknown package drover-no-such-package in ") {
		t.Fatalf("err = %v", err)
	}
	assertNoEntry(t, c, spec)
}

func TestE2EUnreachableMirror(t *testing.T) {
	c := testCache(t)
	spec := BaseSpec{Arch: "amd64", Mirror: "http://127.0.0.1:9/debian"}
	start := time.Now()
	_, _, err := c.Base(testContext(t, time.Minute), spec, nil)
	took := time.Since(start)
	t.Logf("failed in %s: %v", took.Round(time.Millisecond), err)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "bootstrap" || !strings.Contains(err.Error(), "mirror http://127.0.0.1:9/debian is unreachable") {
		t.Fatalf("err = %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("took %s to notice", took)
	}
	assertNoEntry(t, c, spec)
}

// assertNoEntry checks that a failed build left nothing in the cache.
func assertNoEntry(t *testing.T, c *Cache, spec BaseSpec) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(c.Dir, "trees", spec.Key()+"*"))
	if len(left) != 0 {
		t.Errorf("failed build left %v", left)
	}
	// Other builds may share the cache dir: look only at this key's.
	for _, l := range left {
		assertNothingMounted(t, l)
	}
}
