package tree

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildKeyring: a spec's keyring is written where apt's _apt user can read it, given to
// mmdebstrap, copied into the tree and named by signed-by on every sources.list line, and a file://
// archive given to mmdebstrap as copy:// is file:// again in the tree (the hooks run here against
// a tree with the sources.list mmdebstrap writes); the keyring's bytes change the tree's key.
func TestBuildKeyring(t *testing.T) {
	key := []byte("\x99\x00\x33binary key bytes")
	n, err := BaseSpec{Mirror: "file:///srv/mirror", SecurityMirror: "file:///srv/mirror", Arch: "amd64", Keyring: key}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	b := build{spec: n, root: filepath.Join(work, "root"), debs: "/c/debs", debsOut: filepath.Join(work, "debs")}
	removeKeyring, err := b.writeKeyring()
	if err != nil {
		t.Fatal(err)
	}
	defer removeKeyring()
	if got, err := os.ReadFile(b.keyring); err != nil || string(got) != string(key) || filepath.Base(b.keyring) != "archive-key.gpg" {
		t.Fatalf("keyring file %s: %q, %v", b.keyring, got, err)
	}
	for p := b.keyring; p != "/"; p = filepath.Dir(p) { // apt's _apt user must reach it
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o005 != 0o005 && fi.IsDir() || fi.Mode().Perm()&0o004 == 0 {
			t.Errorf("%s is not readable by others: %v", p, err)
		}
	}
	args, err := b.args()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--keyring="+b.keyring) || !slices.Contains(b.simulateArgs(), "--keyring="+b.keyring) {
		t.Errorf("mmdebstrap is not given --keyring=%s: %q", b.keyring, args)
	}
	root := b.root
	if err := os.MkdirAll(filepath.Join(root, "etc/apt"), 0o755); err != nil {
		t.Fatal(err)
	}
	// What mmdebstrap writes: the lines it was given (a file:// archive as copy://), and the
	// second form when it picked a signed-by itself.
	if last := args[len(args)-1]; last != "deb copy:///srv/mirror bookworm-security main" {
		t.Errorf("mmdebstrap's last source is %q, want the file:// archive as copy://", last)
	}
	sources := strings.Join(b.bootstrapSourceLines(), "\n") + "\n"
	sources += "deb [signed-by=\"/usr/share/keyrings/debian-archive-keyring.gpg\"] copy:///srv/mirror bookworm main\n"
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		hook, ok := strings.CutPrefix(a, "--customize-hook=")
		if !ok || !strings.Contains(hook, "keyring") && !strings.Contains(hook, "copy://") {
			continue
		}
		if out, err := exec.Command("sh", "-c", hook, "exec", root).CombinedOutput(); err != nil {
			t.Fatalf("hook %q: %v\n%s", hook, err, out)
		}
	}
	if got, err := os.ReadFile(filepath.Join(root, "etc/apt/keyrings/drover-archive.gpg")); err != nil || string(got) != string(key) {
		t.Errorf("keyring in the tree: %q, %v", got, err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "etc/apt/sources.list"))
	want := "deb [signed-by=/etc/apt/keyrings/drover-archive.gpg] file:///srv/mirror bookworm main\n" +
		"deb [signed-by=/etc/apt/keyrings/drover-archive.gpg] file:///srv/mirror bookworm-updates main\n" +
		"deb [signed-by=/etc/apt/keyrings/drover-archive.gpg] file:///srv/mirror bookworm-security main\n" +
		"deb [signed-by=/etc/apt/keyrings/drover-archive.gpg] file:///srv/mirror bookworm main\n"
	if string(got) != want {
		t.Errorf("sources.list:\n%s\nwant:\n%s", got, want)
	}

	removeKeyring()
	if _, err := os.Stat(filepath.Dir(b.keyring)); !os.IsNotExist(err) {
		t.Errorf("the keyring's directory is left behind: %v", err)
	}

	without := n
	without.Keyring = nil
	other := n
	other.Keyring = []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
	if n.Key() == without.Key() || n.Key() == other.Key() {
		t.Error("the keyring's bytes do not change the tree's key")
	}
	if keyringExt(other.Keyring) != ".asc" || keyringExt(key) != ".gpg" {
		t.Error("armored keys must be .asc and binary ones .gpg for apt")
	}
	if !strings.Contains(n.String(), "signed by keyring sha256:") {
		t.Errorf("String() does not mention the keyring: %s", n)
	}
}
