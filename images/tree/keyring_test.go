package tree

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildKeyring: a spec's keyring is written next to the tree, given to mmdebstrap, copied into
// the tree and named by signed-by on every sources.list line (the hooks run here against a tree
// with the sources.list mmdebstrap writes); its bytes change the tree's key.
func TestBuildKeyring(t *testing.T) {
	key := []byte("\x99\x00\x33binary key bytes")
	n, err := BaseSpec{Mirror: "file:///srv/mirror", SecurityMirror: "file:///srv/mirror", Arch: "amd64", Keyring: key}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	b := build{spec: n, root: filepath.Join(work, "root"), debs: "/c/debs", debsOut: filepath.Join(work, "debs")}
	if err := b.writeKeyring(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(work, "archive-key.gpg")); err != nil || string(got) != string(key) {
		t.Fatalf("keyring file: %q, %v", got, err)
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
	sources := strings.Join(n.sourceLines(), "\n") + "\n"
	// The second form is what mmdebstrap writes when it picked a signed-by itself.
	sources += "deb [signed-by=\"/usr/share/keyrings/debian-archive-keyring.gpg\"] file:///srv/mirror bookworm main\n"
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		hook, ok := strings.CutPrefix(a, "--customize-hook=")
		if !ok || !strings.Contains(hook, "keyring") {
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
