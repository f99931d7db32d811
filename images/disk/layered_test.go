package disk

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secretMarker is in a base file that the new tree removes: the layered
// disk must not carry it in its free space.
const secretMarker = "BASE-ONLY-PRIVATE-KEY-MATERIAL-0123456789"

// layeredTrees makes a base tree and a new tree derived from it (cp -a,
// then the kinds of change a role's steps make), with fresh mtimes the
// epoch clamps.
func layeredTrees(t *testing.T) (base, tree string, copied time.Time) {
	base = fakeTree(t)
	for p, content := range map[string]string{
		"etc/ssh/ssh_host_ed25519_key": strings.Repeat(secretMarker, 200),
		"var/www/html/index.html":      "<h1>old</h1>\n",
		"etc/gone/a":                   "a",
		"etc/typechange":               "file first",
		"etc/mode":                     "m",
	} {
		full := filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree = filepath.Join(t.TempDir(), "tree")
	if out, err := exec.Command("cp", "-a", base, tree).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	copied = changeTime(t, tree)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(tree, "var/www/html/index.html"), []byte("<h1>new, longer</h1>\n"), 0o644))
	must(os.Remove(filepath.Join(tree, "etc/ssh/ssh_host_ed25519_key")))
	must(os.RemoveAll(filepath.Join(tree, "etc/gone")))
	must(os.Remove(filepath.Join(tree, "etc/typechange")))
	must(os.MkdirAll(filepath.Join(tree, "etc/typechange/sub"), 0o750))
	must(os.WriteFile(filepath.Join(tree, "etc/typechange/sub/f"), []byte("under"), 0o600))
	must(os.Chmod(filepath.Join(tree, "etc/mode"), 0o4755))
	must(os.Chown(filepath.Join(tree, "etc/mode"), 12, 34))
	must(os.MkdirAll(filepath.Join(tree, "opt/app/bin"), 0o755))
	must(os.WriteFile(filepath.Join(tree, "opt/app/bin/tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.Link(filepath.Join(tree, "opt/app/bin/tool"), filepath.Join(tree, "opt/app/bin/tool2")))
	must(os.Remove(filepath.Join(tree, "etc/link")))
	must(os.Symlink("/opt/app/bin/tool", filepath.Join(tree, "etc/link")))
	must(os.Symlink("../lib/systemd/system/nginx.service", filepath.Join(tree, "etc/enabled.service")))
	must(syscall.Mkfifo(filepath.Join(tree, "etc/fifo"), 0o600))
	if err := syscall.Setxattr(filepath.Join(tree, "opt/app/bin/tool"), "user.drover", []byte("x\x00y"), 0); err != nil {
		t.Logf("no user xattrs here: %v", err)
	}
	return base, tree, copied
}

// changeTime writes a file in dir and returns its change time: every file
// changed later has a change time no earlier.
func changeTime(t *testing.T, dir string) time.Time {
	t.Helper()
	marker := filepath.Join(filepath.Dir(dir), ".marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(marker, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
}

func layeredSpec(tree, out, base, images string) Spec {
	s := testSpec(tree, out)
	s.Base = &BaseLayer{Tree: base, ImageDir: images}
	return s
}

// TestLayeredColdEqualsWarm: a build that makes the base image and one that
// finds it give the same bytes, with or without a content hint, and the
// image holds exactly the new tree.
func TestLayeredColdEqualsWarm(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	base, tree, copied := layeredTrees(t)
	dir, images := t.TempDir(), t.TempDir()
	cold, err := Assemble(ctx, layeredSpec(tree, filepath.Join(dir, "cold.raw"), base, images))
	if err != nil {
		t.Fatal(err)
	}
	if kept, _ := filepath.Glob(filepath.Join(images, "*.ext4")); len(kept) != 1 {
		t.Fatalf("base images kept: %v", kept)
	}
	warmSpec := layeredSpec(tree, filepath.Join(dir, "warm.raw"), base, images)
	hinted := 0
	warmSpec.Base.Hint = func(rel string) bool { // as rootfs does for a copied work tree
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(tree, rel), &st); err != nil {
			return true
		}
		changed := !time.Unix(st.Ctim.Sec, st.Ctim.Nsec).Before(copied)
		if !changed {
			hinted++
		}
		return changed
	}
	warm, err := Assemble(ctx, warmSpec)
	if err != nil {
		t.Fatal(err)
	}
	if hinted == 0 {
		t.Error("the hint spared no comparison")
	}
	if cold.SHA256 != warm.SHA256 {
		t.Errorf("cold %s and warm %s builds differ", cold.SHA256, warm.SHA256)
	}
	if sum, _ := sha256File(warm.Path); sum != warm.SHA256 {
		t.Errorf("Result.SHA256 %s is not the file's %s", warm.SHA256, sum)
	}
	checkPartitions(t, warm.Path)
	l := newLayout(amd64, mustUUID(t, testRootUUID), warm.ESPSize, warm.RootSize)
	root := extract(t, warm.Path, l.rootStart, l.rootSize)
	checkRootFS(t, root)
	checkESP(t, extract(t, warm.Path, l.espStart, l.espSize))
	out, err := exec.Command("dumpe2fs", "-h", root).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Filesystem UUID:          "+testRootUUID) {
		t.Errorf("dumpe2fs: %v, want UUID %s\n%s", err, testRootUUID, out)
	}
	raw, err := os.ReadFile(warm.Path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secretMarker)) {
		t.Error("a removed base file's content is still in the disk")
	}
	compareImageWithTree(t, root, tree, time.Unix(1700000000, 0))
}

// compareImageWithTree dumps the filesystem image and checks that it holds
// exactly the tree: types, permissions, owners, clamped mtimes, contents,
// link targets and hard links.
func compareImageWithTree(t *testing.T, img, tree string, epoch time.Time) {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "dump")
	if err := os.Mkdir(dump, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-R", "rdump / "+dump, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v\n%s", err, out)
	}
	got := dump // rdump of / puts the root directory's entries in dump
	seen := map[string]bool{}
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		seen[rel] = true
		want, _ := os.Lstat(p)
		if want.Mode()&fs.ModeNamedPipe != 0 { // rdump skips FIFOs: ask debugfs
			out, err := exec.Command("debugfs", "-R", "stat /"+rel, img).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Type: FIFO") {
				t.Errorf("%s: %v\n%s", rel, err, out)
			}
			return nil
		}
		have, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: missing from the image", rel)
			return nil
		}
		if have.Mode() != want.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, have.Mode(), want.Mode())
		}
		ws, hs := want.Sys().(*syscall.Stat_t), have.Sys().(*syscall.Stat_t)
		if ws.Uid != hs.Uid || ws.Gid != hs.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, hs.Uid, hs.Gid, ws.Uid, ws.Gid)
		}
		wantTime := want.ModTime().Truncate(time.Second)
		if wantTime.After(epoch) {
			wantTime = epoch
		}
		if rel != "." && !want.IsDir() && want.Mode()&fs.ModeSymlink == 0 && !have.ModTime().Truncate(time.Second).Equal(wantTime) {
			t.Errorf("%s: mtime %v, want %v", rel, have.ModTime(), wantTime)
		}
		switch {
		case want.Mode().IsRegular():
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(filepath.Join(got, rel))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: content %q, want %q", rel, b, a)
			}
		case want.Mode()&fs.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(filepath.Join(got, rel))
			if a != b {
				t.Errorf("%s: link to %q, want %q", rel, b, a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if rel == "lost+found" {
			return filepath.SkipDir
		}
		if !seen[rel] {
			t.Errorf("%s: in the image, not in the tree", rel)
		}
		return nil
	})
	// Hard links are one inode in the image.
	out, err := exec.Command("debugfs", "-R", "stat /opt/app/bin/tool2", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Links: 2") {
		t.Errorf("hard-linked new files: %v\n%s", err, out)
	}
	if _, err := syscall.Getxattr(filepath.Join(tree, "opt/app/bin/tool"), "user.drover", make([]byte, 8)); err == nil {
		out, err := exec.Command("debugfs", "-R", "ea_get /opt/app/bin/tool user.drover", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "user.drover (3) = 78 00 79") {
			t.Errorf("xattr: %v\n%s", err, out)
		}
	}
}

func TestDiffTreesUnchanged(t *testing.T) {
	base := fakeTree(t)
	tree := filepath.Join(t.TempDir(), "tree")
	if out, err := exec.Command("cp", "-a", base, tree).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	l, err := diffTrees(base, tree, nil, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.removals)+len(l.entries)+len(l.zero) != 0 {
		t.Errorf("a copy has a layer: %+v", l)
	}
	// The epoch clamps mtimes: a copy with clamped times is still the same.
	epoch := time.Unix(1700000000, 0)
	if out, err := exec.Command("find", tree, "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+").CombinedOutput(); err != nil {
		t.Fatalf("touch: %v\n%s", err, out)
	}
	if l, err = diffTrees(base, tree, nil, epoch); err != nil || len(l.entries) != 0 {
		t.Errorf("clamped copy: %v, %+v", err, l)
	}
}

func TestLayerScriptQuotesAndLinks(t *testing.T) {
	l := &layer{
		removals: []removal{{path: `/etc/a "q"`}, {path: "/etc/d", dir: true}},
		entries: []layerEntry{
			{path: "/opt/x", host: "/h/x", create: true, st: syscall.Stat_t{Mode: syscall.S_IFREG | 0o644, Nlink: 2}, mtime: time.Unix(5, 0)},
			{path: "/opt/y", host: "/h/y", create: true, linkTo: "/opt/x", st: syscall.Stat_t{Mode: syscall.S_IFREG | 0o644, Nlink: 2}},
		},
	}
	got, err := layerScript(l, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rm \"/etc/a \"\"q\"\"\"\n", "rmdir \"/etc/d\"\n", "cd \"/opt\"\nwrite \"/h/x\" \"x\"\n",
		"sif \"/opt/x\" mode 0100644\n", "sif \"/opt/x\" mtime @5\n", "ln \"/opt/x\" \"y\"\n", "sif \"/opt/x\" links_count 2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "sif \"/opt/y\"") {
		t.Errorf("a hard link got attributes of its own:\n%s", got)
	}
	if _, err := debugfsQuote("a\nb"); err == nil {
		t.Error("a newline was quoted")
	}
}

func TestPruneOrphanBaseImages(t *testing.T) {
	dir, trees := t.TempDir(), t.TempDir()
	tree := "abc-1111111111111111"
	if err := os.Mkdir(filepath.Join(trees, tree), 0o755); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, tree+"-0123456789abcdef01234567.ext4")
	orphan := filepath.Join(dir, "abc-2222222222222222-0123456789abcdef01234567.ext4")
	writing := filepath.Join(dir, ".abc-2222222222222222-0123456789abcdef01234567.ext4.tmp-1")
	for _, f := range []string{kept, orphan, writing} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if removed := pruneOrphanBaseImages(dir, trees); len(removed) != 1 || removed[0] != orphan {
		t.Fatalf("removed %v, want only %s", removed, orphan)
	}
	for _, f := range []string{kept, writing} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
