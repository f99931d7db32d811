package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// volumeCatalog adds two compute types to testCatalog: "vols" attaches volumes but cannot change a
// stopped instance's user-data (as digitalocean), "volsedit" can do both (as qemu and aws).
type volumeCatalog struct{ testCatalog }

type volsConfig struct {
	testConfig
	edits bool
}

func (*volsConfig) HasVolumes() bool      { return true }
func (c *volsConfig) EditsUserData() bool { return c.edits }

func (c volumeCatalog) NewConfig(kind, typ string) (any, bool, error) {
	if kind == KindCompute && (typ == "vols" || typ == "volsedit") {
		return &volsConfig{edits: typ == "volsedit"}, true, nil
	}
	return c.testCatalog.NewConfig(kind, typ)
}

func (volumeCatalog) Types(string) []string { return []string{"t", "vols", "volsedit"} }
func (volumeCatalog) Available(string) []string {
	return []string{"t", "vols", "volsedit", "vault", "local"}
}

// A handoff role with Vault secrets on a compute type that cannot change a stopped instance's
// user-data is refused at its first volume block; the same role without secrets, or on a type that
// can, is not.
func TestVolumeSecretsNeedUserDataEdits(t *testing.T) {
	src := func(typ, secrets string) string {
		return `vault {
  address = "http://127.0.0.1:8200"
}
compute "` + typ + `" "prod" {}
role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
` + secrets + `  }
  deploy {
    compute = "prod"
    volume "pgdata" {
      size  = "2GiB"
      mount = "/var/lib/postgresql"
    }
  }
}
`
	}
	const secrets = "    secrets  = [\"kv/data/db/postgres\"]\n"
	for _, tc := range []struct {
		typ, secrets string
		refused      bool
	}{{"vols", secrets, true}, {"vols", "", false}, {"volsedit", secrets, false}} {
		path := filepath.Join(t.TempDir(), "drover.hcl")
		if err := os.WriteFile(path, []byte(src(tc.typ, tc.secrets)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := Load(path, Options{Providers: volumeCatalog{}, Deploy: testDeployCatalog{}, LookupEnv: func(string) (string, bool) { return "", false }})
		var found []string
		for _, d := range diags.Diags {
			found = append(found, d.Summary)
			if d.Summary != "Secrets need user-data edits on this compute" {
				continue
			}
			if !tc.refused {
				t.Errorf("%s with secrets %q: refused: %s", tc.typ, tc.secrets, d.Detail)
			}
			if d.Subject == nil || d.Subject.Start.Line != 13 || d.Subject.Start.Column != 5 {
				t.Errorf("the diagnostic is at %v, want the volume block at 13:5", d.Subject)
			}
			for _, want := range []string{`Role "db"`, `volume "pgdata"`, `compute "prod" of type "vols"`, "user-data", "qemu, aws"} {
				if !strings.Contains(d.Detail, want) {
					t.Errorf("the diagnostic's detail lacks %q: %s", want, d.Detail)
				}
			}
		}
		if got := strings.Join(found, "; "); tc.refused != strings.Contains(got, "Secrets need user-data edits") {
			t.Errorf("%s with secrets %q: diagnostics %q, refused = %v wanted", tc.typ, tc.secrets, got, tc.refused)
		}
	}
}
