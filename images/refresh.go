package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Refresh is what a refresh found: the packages of the image before (Predecessor, the newest image
// of the same recipe) for which the mirror now offers another version.
type Refresh struct {
	Predecessor string          `json:"predecessor"`
	Changed     []PackageChange `json:"changed"`
}

// CheckPackages compares the packages an image has with the versions the mirror offers now
// (candidates: package name to the version apt would install, tree.Cache.Candidates). It returns
// the packages whose version would change, sorted by name, and the digest of the whole package set
// a build now would get: each package's offered version, or its own when the mirror no longer
// lists it. A package set with no change gives no change and a digest nobody needs.
func CheckPackages(have []Package, candidates map[string]string) (digest string, changed []PackageChange) {
	lines := make([]string, 0, len(have))
	for _, p := range have {
		v, ok := candidates[p.Name]
		if !ok {
			v = p.Version
		}
		if v != p.Version {
			changed = append(changed, PackageChange{Name: p.Name, From: p.Version, To: v})
		}
		lines = append(lines, p.Name+":"+p.Arch+" "+v)
	}
	sort.Strings(lines)
	sort.Slice(changed, func(i, j int) bool { return changed[i].Name < changed[j].Name })
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:]), changed
}

// NewestOfRecipe is the newest image of role whose inputs are recipe (Inputs.Recipe) in any package
// set, or nil. all is the catalog's list (Catalog.List).
func NewestOfRecipe(all []*Manifest, role, recipe string) *Manifest {
	var newest *Manifest
	for _, m := range all {
		if m.Role != role || m.Inputs.Recipe() != recipe {
			continue
		}
		if newest == nil || m.Created.After(newest.Created) {
			newest = m
		}
	}
	return newest
}

// Summary is the refresh in one line for people: "3 packages newer: libc6 2.36-9+deb12u9 ->
// 2.36-9+deb12u10, ...".
func (r *Refresh) Summary(max int) string {
	var parts []string
	for i, c := range r.Changed {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(r.Changed)-max))
			break
		}
		parts = append(parts, c.Name+" "+c.From+" -> "+c.To)
	}
	noun := "packages"
	if len(r.Changed) == 1 {
		noun = "package"
	}
	return fmt.Sprintf("%d %s changed in the mirror: %s", len(r.Changed), noun, strings.Join(parts, ", "))
}
