package rootfs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images/tree"
)

// TestAddRepositories: the packages a repository offers leave the base tree's package set for the
// work tree, the base tree stays the one without repositories, and the key's bytes are in the
// identity.
func TestAddRepositories(t *testing.T) {
	f, role := webFleet()
	role.Image.Packages = []string{"nginx", "vault"}
	opts := Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: agentDir(t)}
	agent := func(string) (string, error) { return "agent", nil }
	var asked []tree.Repository
	offers := func(_ context.Context, _ *tree.Cache, arch string, repos []tree.Repository) (map[string]string, error) {
		asked = repos
		return map[string]string{"vault": "1.15.0-1", "consul": "1.0"}, nil
	}
	plainRole := *role
	plainRole.Image.Packages = []string{"nginx"}
	plain, err := newRequest(f, &plainRole, opts, agent, offers)
	if err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(t.TempDir(), "hashicorp.asc")
	if err := os.WriteFile(key, []byte("key one"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := fleet.DefaultBase()
	base.Repositories = []fleet.Repository{{Name: "hashicorp", URI: "https://old.example", Suite: "bookworm", Components: []string{"main"}, Key: key}}
	f.Bases = []*fleet.Base{base}
	role.Image.Repositories = []fleet.Repository{{Name: "hashicorp", URI: "https://apt.releases.hashicorp.com", Suite: "bookworm", Components: []string{"main"}, Key: key}}
	one, err := newRequest(f, role, opts, agent, offers)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0].URI != "https://apt.releases.hashicorp.com" || string(asked[0].Key) != "key one" {
		t.Errorf("asked %+v; want the image's repository, which replaces the base's of the same name", asked)
	}
	if !slices.Equal(one.RepositoryPackages, []string{"vault"}) || slices.Contains(one.Base.Packages, "vault") || !slices.Contains(one.Base.Packages, "nginx") {
		t.Errorf("repository packages %v, base tree packages %v; want vault from the repository, nginx in the base tree", one.RepositoryPackages, one.Base.Packages)
	}
	if one.Base.Key() != plain.Base.Key() {
		t.Error("the base tree of a role with a repository package differs from the one without it: it would not be shared")
	}
	if len(one.Inputs.Repositories) != 1 || one.Inputs.Repositories[0].Key == "" || one.Identity() == plain.Identity() {
		t.Errorf("inputs' repositories %+v", one.Inputs.Repositories)
	}
	if err := os.WriteFile(key, []byte("key two"), 0o644); err != nil {
		t.Fatal(err)
	}
	two, err := newRequest(f, role, opts, agent, offers)
	if err != nil {
		t.Fatal(err)
	}
	if two.Identity() == one.Identity() || two.Base.Key() != one.Base.Key() {
		t.Error("another key did not change the identity, or changed the base tree")
	}
}
