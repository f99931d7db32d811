package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drover-dev/drover/fleet"
)

// TestRequestKeyring: a base's keyring file reaches the build as bytes, and its content (not its
// path) is part of the image identity and the tree key.
func TestRequestKeyring(t *testing.T) {
	f, role := webFleet()
	opts := Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: agentDir(t)}
	plain, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyring := filepath.Join(dir, "mirror.gpg")
	if err := os.WriteFile(keyring, []byte("key one"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := fleet.DefaultBase()
	base.Keyring = keyring
	f.Bases = []*fleet.Base{base}
	one, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	if string(one.Base.Keyring) != "key one" || one.Inputs.Base.Keyring == "" || one.Identity() == plain.Identity() || one.Base.Key() == plain.Base.Key() {
		t.Errorf("keyring: bytes %q, inputs %+v, identity %s (without: %s)", one.Base.Keyring, one.Inputs.Base, one.Identity(), plain.Identity())
	}
	moved := filepath.Join(dir, "renamed.gpg")
	if err := os.Rename(keyring, moved); err != nil {
		t.Fatal(err)
	}
	base.Keyring = moved
	same, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	if same.Identity() != one.Identity() {
		t.Error("moving the keyring file changed the identity; only its bytes should count")
	}
	if err := os.WriteFile(moved, []byte("key two"), 0o644); err != nil {
		t.Fatal(err)
	}
	two, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	if two.Identity() == one.Identity() || two.Base.Key() == one.Base.Key() || two.Inputs.Base.Keyring == one.Inputs.Base.Keyring {
		t.Error("another key did not change the identity and the tree key")
	}
	id, err := NewIdentifier(opts).Identity(f, role)
	if err != nil || id != two.Identity() {
		t.Errorf("Identifier says %s (%v), the request %s", id, err, two.Identity())
	}
}
