package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestComposeDecoded checks that a compose block reads its Compose file: the version, each service
// with its image matched to the docker container block baking it, the role's packages gaining
// docker.io, skopeo and docker-compose once, and a docker container with start = false kept (baked)
// but not started; the same image baked for podman too does not stand in for the docker block.
func TestComposeDecoded(t *testing.T) {
	dir := t.TempDir()
	compose := "version: '3.8'\nservices:\n  db:\n    image: registry.example.net/app/db:16@sha256:" + hex64("1") + "\n    network_mode: host\n"
	if err := os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := load(t, `
role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx", "docker.io"]
    container "db-podman" {
      image  = "registry.example.net/app/db:16"
      digest = "sha256:`+hex64("1")+`"
    }
    container "db" {
      image  = "registry.example.net/app/db:16"
      digest = "sha256:`+hex64("1")+`"
      engine = "docker"
      start  = false
    }
    compose "app" {
      file = "`+filepath.Join(dir, "stack.yml")+`"
    }
  }
}
`, Options{})
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", diags)
	}
	img := f.Roles[0].Image
	if len(img.Composes) != 1 {
		t.Fatalf("composes %+v", img.Composes)
	}
	c := img.Composes[0]
	if c.Name != "app" || c.Version != "3.8" || c.File != filepath.Join(dir, "stack.yml") || len(c.Services) != 1 {
		t.Fatalf("compose decoded as %+v", c)
	}
	if s := c.Services[0]; s.Name != "db" || s.Container.Name != "db" || s.Range.Start.Line != 4 || s.Range.Start.Column != 12 {
		t.Errorf("service %+v", s)
	}
	if img.Containers[1].Start {
		t.Errorf("db has start = false but decoded as %+v", img.Containers[1])
	}
	if !slices.Equal(img.Packages, []string{"nginx", "docker.io", "podman", "skopeo", "apparmor", "docker-compose"}) {
		t.Errorf("packages %q", img.Packages)
	}
}

func hex64(digit string) string { return strings.Repeat(digit, 64) }
