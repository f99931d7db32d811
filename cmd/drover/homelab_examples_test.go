package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout"
)

// uncommentBlock writes out the commented block of examples/homelab's drover.hcl that starts with
// the line "    #   HEADER {" and ends at its closing "    #   }", as a reader following the
// comment would; it fails when the example no longer shows it.
func uncommentBlock(t *testing.T, src, header string) string {
	t.Helper()
	i := strings.Index(src, "    #   "+header+" {\n")
	j := strings.Index(src[max(i, 0):], "    #   }\n")
	if i < 0 || j < 0 {
		t.Fatalf("examples/homelab/drover.hcl shows no commented %s block", header)
	}
	j += i + len("    #   }\n")
	return src[:i] + strings.ReplaceAll(src[i:j], "    #   ", "    ") + src[j:]
}

// TestHomelabContainersAndRepository: the container, Compose and repository blocks that
// examples/homelab shows (commented: the demo's lab has no registry and does not reach HashiCorp)
// are valid as written once a reader fills in what the comments say: the digests skopeo reports,
// the Compose file that pins them, the repository's exported key. TestE2EContainerBaked and
// TestE2EThirdPartyRepository build and boot such blocks; this keeps the example's syntax theirs.
func TestHomelabContainersAndRepository(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples/homelab", dir)
	path := filepath.Join(dir, "drover.hcl")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	for _, header := range []string{`container "stats"`, `container "redis"`, `compose "queue"`, `repository "hashicorp"`} {
		src = uncommentBlock(t, src, header)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	src = strings.ReplaceAll(src, `"sha256:..."`, `"`+digest+`"`)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := "services:\n  redis:\n    image: registry.lab.example:5000/library/redis:7@" + digest + "\n"
	if err := os.WriteFile(filepath.Join(dir, "web/compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	writeExportedKey(t, filepath.Join(dir, "vault/hashicorp-archive-keyring.gpg"))

	f, _ := loadHomelab(t, path, "container, compose and repository blocks are")
	roles := map[string]*fleet.Role{}
	for _, r := range f.Roles {
		roles[r.Name] = r
	}
	web, vault := roles["web"], roles["vault"]
	if web == nil || vault == nil {
		t.Fatal("the example has no web or no vault role")
	}
	var names []string
	for _, c := range web.Image.Containers {
		names = append(names, c.Name+"@"+c.Engine)
	}
	if got := strings.Join(names, " "); got != "stats@podman redis@docker" {
		t.Errorf("web's containers %q, want stats (podman) and redis (docker)", got)
	}
	if len(web.Image.Composes) != 1 || web.Image.Composes[0].Name != "queue" {
		t.Errorf("web's compose stacks %+v, want queue", web.Image.Composes)
	}
	if len(vault.Image.Repositories) != 1 || vault.Image.Repositories[0].Name != "hashicorp" {
		t.Errorf("vault's repositories %+v, want hashicorp", vault.Image.Repositories)
	}
}

// loadHomelab loads the homelab fleet at path as drover would (the lab's TSIG secret set), failing
// with the diagnostics, which name what, when it is not valid.
func loadHomelab(t *testing.T, path, what string) (*fleet.Fleet, *app) {
	t.Helper()
	env := map[string]string{"DROVER_TSIG_SECRET": "c2VjcmV0"}
	var out bytes.Buffer
	a := newApp(&out, &out, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	f, diags := fleet.Load(path, fleet.Options{Providers: a.registry(), LookupEnv: a.env, Deploy: rollout.NewCatalog(nil, nil)})
	if diags.HasErrors() {
		var b bytes.Buffer
		diags.WriteText(&b)
		t.Fatalf("the example's %s not valid:\n%s", what, b.String())
	}
	return f, a
}

// writeExportedKey writes a new OpenPGP public key to path, as gpg --export would.
func writeExportedKey(t *testing.T, path string) {
	t.Helper()
	e, err := openpgp.NewEntity("HashiCorp Security", "example", "security@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
