package fleet

import (
	"slices"
	"testing"
)

// TestContainerDecoded checks that a container block with every value set, and one with the
// defaults, are decoded into Image.Containers, and that the role's packages gain podman once.
func TestContainerDecoded(t *testing.T) {
	f, diags := load(t, `
role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    container "app" {
      image             = "127.0.0.1:5000/drover/app:1"
      digest            = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
      engine            = "podman"
      command           = ["/app", "-listen", ":8080"]
      network           = "none"
      volumes           = ["/run/drover/secrets:/secrets:ro"]
      insecure_registry = true
    }
    container "plain" {
      image  = "registry.example.net/tools/plain"
      digest = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
    }
  }
}
`, Options{})
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", diags)
	}
	img := f.Roles[0].Image
	if len(img.Containers) != 2 {
		t.Fatalf("containers %+v, want 2", img.Containers)
	}
	app, plain := img.Containers[0], img.Containers[1]
	if app.Name != "app" || app.Engine != "podman" || app.Network != "none" || !app.InsecureRegistry ||
		!slices.Equal(app.Command, []string{"/app", "-listen", ":8080"}) || !slices.Equal(app.Volumes, []string{"/run/drover/secrets:/secrets:ro"}) {
		t.Errorf("app decoded as %+v", app)
	}
	if got, want := app.Ref(), "127.0.0.1:5000/drover/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; got != want {
		t.Errorf("app.Ref() = %q, want %q", got, want)
	}
	if plain.Engine != "podman" || plain.Network != "host" || plain.InsecureRegistry || plain.Command != nil {
		t.Errorf("plain has not the defaults: %+v", plain)
	}
	if got := plain.Ref(); got != "registry.example.net/tools/plain@"+plain.Digest {
		t.Errorf("plain.Ref() = %q", got)
	}
	if !slices.Equal(img.Packages, []string{"nginx", "podman"}) {
		t.Errorf("packages %q, want nginx and podman once", img.Packages)
	}
}
