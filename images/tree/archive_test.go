package tree

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func release(packagesSHA string) string {
	return `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Debian
Date: Fri, 04 Dec 2026 09:00:00 UTC
MD5Sum:
 0123 10 main/binary-amd64/Packages
SHA256:
 ` + packagesSHA + `  2579986 main/binary-amd64/Packages
 bbbb  385532 main/binary-amd64/Packages.xz
 cccc  100 main/binary-arm64/Packages.xz
 dddd  100 contrib/binary-amd64/Packages.xz
-----BEGIN PGP SIGNATURE-----
`
}

func TestReleaseIndexes(t *testing.T) {
	got := releaseIndexes(release("aaaa"), "main/binary-amd64/Packages")
	want := []string{"aaaa 2579986 main/binary-amd64/Packages", "bbbb 385532 main/binary-amd64/Packages.xz"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q (the MD5Sum section and other architectures left out)", got, want)
	}
}

// TestArchiveStateAndTreeKey: the tree key of a live mirror follows the Packages indexes of its
// suites, not the Release file's date; a snapshot's key is the spec's; an unreachable archive falls
// back to the newest tree built for the spec.
func TestArchiveStateAndTreeKey(t *testing.T) {
	ctx := context.Background()
	mirror := t.TempDir()
	write := func(suite, sha, date string) {
		text := strings.Replace(release(sha), "09:00:00", date, 1)
		writeTestFile(t, filepath.Join(mirror, "dists", suite, "InRelease"), text)
	}
	for _, s := range []string{"bookworm", "bookworm-updates"} {
		write(s, "aaaa", "09:00:00")
	}
	writeTestFile(t, filepath.Join(mirror+"-security", "dists/bookworm-security/Release"), release("eeee"))
	spec := BaseSpec{Arch: "amd64", Mirror: "file://" + mirror, SecurityMirror: "file://" + mirror + "-security"}
	trees := t.TempDir()
	var log bytes.Buffer
	key1, err := treeKey(ctx, spec.normalized(), trees, &log)
	if err != nil || !strings.HasPrefix(key1, spec.Key()+"-") || len(key1) != 64+1+16 {
		t.Fatalf("key %q, %v", key1, err)
	}
	write("bookworm", "aaaa", "15:00:00") // re-signed: same indexes
	if k, _ := treeKey(ctx, spec.normalized(), trees, &log); k != key1 {
		t.Errorf("a new Release date changed the key: %s, was %s", k, key1)
	}
	write("bookworm-updates", "ffff", "15:00:00") // an update
	key2, _ := treeKey(ctx, spec.normalized(), trees, &log)
	if key2 == key1 || !strings.HasPrefix(key2, spec.Key()+"-") {
		t.Errorf("an update did not change the key: %s", key2)
	}
	if k, _ := treeKey(ctx, (BaseSpec{Snapshot: "20261101T000000Z", Mirror: "http://127.0.0.1:9/debian"}).normalized(), trees, &log); k != (BaseSpec{Snapshot: "20261101T000000Z", Mirror: "http://127.0.0.1:9/debian"}).Key() {
		t.Errorf("a snapshot's key %s is not its spec's", k)
	}

	os.RemoveAll(filepath.Join(mirror, "dists/bookworm-updates"))
	if k, _ := treeKey(ctx, spec.normalized(), trees, &log); k != spec.Key() {
		t.Errorf("unreadable archive, no tree built: key %s, want the spec's", k)
	}
	if err := os.MkdirAll(filepath.Join(trees, key2), 0o755); err != nil {
		t.Fatal(err)
	}
	writeLatest(trees, spec.normalized(), key2, &log)
	log.Reset()
	if k, _ := treeKey(ctx, spec.normalized(), trees, &log); k != key2 || !strings.Contains(log.String(), "cannot tell whether the archive changed") {
		t.Errorf("unreadable archive with a tree built: key %s (want %s), log %q", k, key2, log.String())
	}
}
