package fleet

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// loadWithKey loads a fleet whose base names keyring = "keys/mirror.gpg", with that file's bytes.
func loadWithKey(t *testing.T, key []byte) (*Fleet, *Diagnostics) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "mirror.gpg"), key, 0o644); err != nil {
		t.Fatal(err)
	}
	src := "base \"local\" {\n  mirror  = \"file:///srv/mirror\"\n  keyring = \"keys/mirror.gpg\"\n}\n"
	path := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path, Options{Providers: testCatalog{}, Deploy: testDeployCatalog{}, LookupEnv: func(string) (string, bool) { return "", false }})
}

func TestBaseKeyring(t *testing.T) {
	entity, err := openpgp.NewEntity("mirror", "", "mirror@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var public, secret, armored bytes.Buffer
	if err := entity.Serialize(&public); err != nil {
		t.Fatal(err)
	}
	if err := entity.SerializePrivate(&secret, nil); err != nil {
		t.Fatal(err)
	}
	w, err := armor.Encode(&armored, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := entity.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()

	for name, key := range map[string][]byte{"binary": public.Bytes(), "armored": armored.Bytes()} {
		f, diags := loadWithKey(t, key)
		if f == nil {
			t.Fatalf("%s public key: %v", name, diags.Diags)
		}
		if got := f.Base("local").Keyring; !filepath.IsAbs(got) || filepath.Base(got) != "mirror.gpg" || filepath.Base(filepath.Dir(got)) != "keys" {
			t.Errorf("%s public key: Keyring %q, want the absolute path of keys/mirror.gpg", name, got)
		}
	}
	for name, c := range map[string]struct {
		key  []byte
		want string
	}{
		"secret key": {secret.Bytes(), "holds a secret key"},
		"empty":      {nil, "holds no key"},
		"garbage":    {[]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64\n"), "is not one"},
	} {
		f, diags := loadWithKey(t, c.key)
		if f != nil || len(diags.Diags) != 1 {
			t.Errorf("%s: loaded with %v, want one diagnostic", name, diags.Diags)
			continue
		}
		d := diags.Diags[0]
		if d.Summary != "Invalid keyring" || !strings.Contains(d.Detail, c.want) || d.Subject.Start.Line != 3 || d.Subject.Start.Column != 13 {
			t.Errorf("%s: %s at %d:%d: %s; want Invalid keyring at 3:13 saying %q", name, d.Summary, d.Subject.Start.Line, d.Subject.Start.Column, d.Detail, c.want)
		}
	}
}
