package tree

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// indexForm is how one Packages index of a test archive is written.
type indexForm string

const (
	formGzip indexForm = ".gz"
	formXz   indexForm = ".xz"
)

// writeSuite writes dists/SUITE of a test archive under root: main/binary-amd64/Packages in the
// given form with one stanza per "name version" entry, and a Release file listing its sha256 (and,
// as Debian's do, the uncompressed index, which is not written).
func writeSuite(t *testing.T, root, suite string, form indexForm, entries ...string) {
	t.Helper()
	var plain bytes.Buffer
	for _, e := range entries {
		name, version, _ := strings.Cut(e, " ")
		fmt.Fprintf(&plain, "Package: %s\nVersion: %s\nArchitecture: amd64\nDescription: test\n\n", name, version)
	}
	var packed bytes.Buffer
	switch form {
	case formGzip:
		zw := gzip.NewWriter(&packed)
		zw.Write(plain.Bytes())
		zw.Close()
	case formXz:
		xw, err := xz.NewWriter(&packed)
		if err != nil {
			t.Fatal(err)
		}
		xw.Write(plain.Bytes())
		xw.Close()
	}
	dir := filepath.Join(root, "dists", suite)
	if err := os.MkdirAll(filepath.Join(dir, "main", "binary-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel := "main/binary-amd64/Packages" + string(form)
	if err := os.WriteFile(filepath.Join(dir, rel), packed.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	release := fmt.Sprintf("Suite: %s\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages\n %s %d %s\n",
		suite, sum(plain.Bytes()), plain.Len(), sum(packed.Bytes()), packed.Len(), rel)
	if err := os.WriteFile(filepath.Join(dir, "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCandidatesAreAptsChoice: the newest version across the suite, -updates and -security wins
// (as apt picks among sources of equal priority), in gzip and xz indexes, with the uncompressed
// form listed but absent; a second call reads only the Release files (the indexes may be gone); an
// index that does not match its Release file is refused, naming it.
func TestCandidatesAreAptsChoice(t *testing.T) {
	root := t.TempDir()
	writeSuite(t, root, "bookworm", formXz, "libc6 2.36-9+deb12u4", "nginx 1.22.1-9", "zlib1g 1:1.2.13.dfsg-1")
	writeSuite(t, root, "bookworm-updates", formGzip, "tzdata 2024a-0+deb12u1")
	writeSuite(t, root, "bookworm-security", formXz, "libc6 2.36-9+deb12u10", "nginx 1.22.1-9+deb12u1")
	spec := BaseSpec{Mirror: "file://" + root, SecurityMirror: "file://" + root, Arch: "amd64"}
	cache := &Cache{Dir: t.TempDir()}

	got, err := cache.Candidates(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"libc6": "2.36-9+deb12u10", "nginx": "1.22.1-9+deb12u1", "zlib1g": "1:1.2.13.dfsg-1", "tzdata": "2024a-0+deb12u1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("candidates %v, want %v", got, want)
	}

	// Unchanged Release files: the cached parse is used, the indexes are not read again.
	for _, suite := range []string{"bookworm", "bookworm-updates", "bookworm-security"} {
		matches, _ := filepath.Glob(filepath.Join(root, "dists", suite, "main", "binary-amd64", "Packages.*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	if again, err := cache.Candidates(context.Background(), spec); err != nil || fmt.Sprint(again) != fmt.Sprint(want) {
		t.Errorf("second call, indexes gone, Release unchanged: %v, %v", again, err)
	}

	// A security update lands: the new Release names a new index, which is read.
	writeSuite(t, root, "bookworm-security", formXz, "libc6 2.36-9+deb12u10", "nginx 1.22.1-9+deb12u2")
	writeSuite(t, root, "bookworm", formXz, "libc6 2.36-9+deb12u4", "nginx 1.22.1-9", "zlib1g 1:1.2.13.dfsg-1")
	writeSuite(t, root, "bookworm-updates", formGzip, "tzdata 2024a-0+deb12u1")
	if got, err := cache.Candidates(context.Background(), spec); err != nil || got["nginx"] != "1.22.1-9+deb12u2" {
		t.Errorf("after the update: nginx %q, %v", got["nginx"], err)
	}

	// An index that is not the one the Release file names.
	idx := filepath.Join(root, "dists", "bookworm-security", "main", "binary-amd64", "Packages.xz")
	os.WriteFile(idx, []byte("not it"), 0o644)
	os.RemoveAll(filepath.Join(cache.Dir, "indexes"))
	_, err = cache.Candidates(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "suite bookworm-security: main/binary-amd64/Packages.xz does not match the sha256 its Release file gives") {
		t.Errorf("a corrupt index: %v", err)
	}
}
