package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRepositoryBlocks(t *testing.T) {
	dir := t.TempDir()
	key, err := os.ReadFile("../testdata/validate/invalid/keyrings/repository.asc")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hashicorp.asc"), key, 0o644); err != nil {
		t.Fatal(err)
	}
	src := `base "debian-bookworm" {
  repository "docker" {
    uri           = "https://download.docker.com/linux/debian"
    suite         = "bookworm"
    components    = ["stable"]
    architectures = ["amd64", "arm64"]
    key           = "hashicorp.asc"
  }
}
role "vault" {
  image {
    base     = "debian-bookworm"
    packages = ["vault"]
    repository "hashicorp" {
      uri   = "https://apt.releases.hashicorp.com"
      suite = "bookworm"
      key   = "hashicorp.asc"
    }
  }
}
`
	path := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := Load(path, Options{Providers: testCatalog{}, Deploy: testDeployCatalog{}, LookupEnv: func(string) (string, bool) { return "", false }})
	if f == nil {
		t.Fatal(diags.Diags)
	}
	docker := f.Base("debian-bookworm").Repositories
	if len(docker) != 1 || docker[0].Name != "docker" || !slices.Equal(docker[0].Components, []string{"stable"}) ||
		!slices.Equal(docker[0].Architectures, []string{"amd64", "arm64"}) || docker[0].Key != filepath.Join(dir, "hashicorp.asc") {
		t.Errorf("base repositories %+v", docker)
	}
	hc := f.Role("vault").Image.Repositories
	if len(hc) != 1 || hc[0].URI != "https://apt.releases.hashicorp.com" || !slices.Equal(hc[0].Components, []string{"main"}) || hc[0].Range.Start.Line != 14 {
		t.Errorf("image repositories %+v; want hashicorp with components [main] at line 14", hc)
	}
	if got, want := hc[0].String(), `repository "hashicorp" (`+path+`:14:5)`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
