package images

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteFileIndexReusing: files unchanged since the copy take their hash from the base index
// (a planted fake proves it is not reread), and a file rewritten after the copy, even to the same
// size and mtime, is hashed again.
func TestWriteFileIndexReusing(t *testing.T) {
	dir := t.TempDir()
	base, work := filepath.Join(dir, "base"), filepath.Join(dir, "work")
	for name, content := range map[string]string{"etc/a": "aaaa", "etc/b": "bbbb", "usr/c": "cccc"} {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFileIndex(base, filepath.Join(dir, "base.gz")); err != nil {
		t.Fatal(err)
	}
	baseIdx := readIndexFile(t, filepath.Join(dir, "base.gz"))
	if out, err := exec.Command("cp", "-a", base, work).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	time.Sleep(30 * time.Millisecond) // past the filesystem clock's tick
	marker := filepath.Join(dir, "marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(marker)
	copied := ChangeTime(fi)

	// Same size, mtime put back: only the change time tells.
	st, _ := os.Stat(filepath.Join(work, "etc/b"))
	if err := os.WriteFile(filepath.Join(work, "etc/b"), []byte("BBBB"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(work, "etc/b"), st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "etc/new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}

	planted := map[string]string{}
	for k, v := range baseIdx {
		planted[k] = v
	}
	fake := strings.Repeat("f", 64)
	planted["/usr/c"] = "-rw-r--r--\t" + fake
	planted["/etc/b"] = "-rw-r--r--\t" + fake
	if err := WriteFileIndexReusing(work, filepath.Join(dir, "work.gz"), &IndexReuse{Base: planted, CopiedBefore: copied}); err != nil {
		t.Fatal(err)
	}
	got := readIndexFile(t, filepath.Join(dir, "work.gz"))
	if got["/usr/c"] != "-rw-r--r--\t"+fake {
		t.Errorf("an unchanged file was rehashed: %q", got["/usr/c"])
	}
	if got["/etc/a"] != baseIdx["/etc/a"] {
		t.Errorf("/etc/a: %q, want the base's %q", got["/etc/a"], baseIdx["/etc/a"])
	}
	if err := WriteFileIndex(work, filepath.Join(dir, "full.gz")); err != nil {
		t.Fatal(err)
	}
	full := readIndexFile(t, filepath.Join(dir, "full.gz"))
	for _, p := range []string{"/etc/b", "/etc/new"} {
		if got[p] != full[p] || strings.Contains(got[p], fake) {
			t.Errorf("%s changed after the copy: %q, want %q", p, got[p], full[p])
		}
	}
}

func readIndexFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ReadFileIndex(zr)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
