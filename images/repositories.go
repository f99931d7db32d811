package images

import (
	"fmt"

	"github.com/drover-dev/drover/fleet"
)

// RepositoryInput is a third-party apt repository as the identity covers it: where it is, what of
// it apt reads, and the sha256 of the key that verifies it. The versions its packages had are in
// the image's SBOM, and a refresh compares them (Inputs.PackageSet).
type RepositoryInput struct {
	Name          string   `json:"name"`
	URI           string   `json:"uri"`
	Suite         string   `json:"suite"`
	Components    []string `json:"components"`
	Architectures []string `json:"architectures,omitempty"`
	Key           string   `json:"key"` // sha256 of the key file's bytes
}

// RoleRepositories are the third-party repositories a role's image installs from: its base's, then
// its image's, in file order; an image's repository replaces the base's of the same name.
func RoleRepositories(base fleet.Base, role *fleet.Role) []fleet.Repository {
	var out []fleet.Repository
	for _, r := range base.Repositories {
		if !hasRepository(role.Image.Repositories, r.Name) {
			out = append(out, r)
		}
	}
	return append(out, role.Image.Repositories...)
}

func hasRepository(list []fleet.Repository, name string) bool {
	for _, r := range list {
		if r.Name == name {
			return true
		}
	}
	return false
}

// repositoryInputs hashes each repository's key file.
func repositoryInputs(repos []fleet.Repository) ([]RepositoryInput, error) {
	var out []RepositoryInput
	for _, r := range repos {
		sum, err := FileSHA256(r.Key)
		if err != nil {
			return nil, fmt.Errorf("images: %s, key: %w", r, err)
		}
		out = append(out, RepositoryInput{Name: r.Name, URI: r.URI, Suite: r.Suite, Components: r.Components,
			Architectures: r.Architectures, Key: sum})
	}
	return out, nil
}
