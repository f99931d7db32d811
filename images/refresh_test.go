package images

import (
	"strings"
	"testing"
	"time"
)

func TestCheckPackagesSaysWhatAnUpdateChanges(t *testing.T) {
	have := []Package{{Name: "nginx", Version: "1.22.1-9+deb12u1", Arch: "amd64"}, {Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64"},
		{Name: "gone", Version: "1.0", Arch: "all"}}
	same, changed := CheckPackages(have, map[string]string{"nginx": "1.22.1-9+deb12u1", "libc6": "2.36-9+deb12u4", "other": "2.0"})
	if len(changed) != 0 {
		t.Errorf("nothing changed upstream, got %v", changed)
	}
	newer, changed := CheckPackages(have, map[string]string{"nginx": "1.22.1-9+deb12u2", "libc6": "2.36-9+deb12u4"})
	if len(changed) != 1 || changed[0] != (PackageChange{Name: "nginx", From: "1.22.1-9+deb12u1", To: "1.22.1-9+deb12u2"}) {
		t.Errorf("nginx updated: changed %v", changed)
	}
	if newer == same || !strings.HasPrefix(newer, "sha256:") {
		t.Errorf("the package set's digest did not change with a version: %s, %s", same, newer)
	}
	// The order of the SBOM does not matter.
	again, _ := CheckPackages([]Package{have[2], have[1], have[0]}, map[string]string{"nginx": "1.22.1-9+deb12u2", "libc6": "2.36-9+deb12u4"})
	if again != newer {
		t.Errorf("digest depends on the order: %s vs %s", again, newer)
	}
	r := Refresh{Changed: changed}
	if got := r.Summary(5); got != "1 package changed in the mirror: nginx 1.22.1-9+deb12u1 -> 1.22.1-9+deb12u2" {
		t.Errorf("summary %q", got)
	}
}

func TestNewestOfRecipeIgnoresThePackageSet(t *testing.T) {
	in := Inputs{Role: "web", Packages: []string{"nginx"}}
	refreshed := in
	refreshed.PackageSet = "sha256:abc"
	if in.Recipe() != refreshed.Recipe() || in.Identity() == refreshed.Identity() {
		t.Fatal("the recipe must ignore the package set, the identity must not")
	}
	if in.Recipe() != in.Identity() {
		t.Error("an image with no package set must keep the identity it had before package sets existed")
	}
	other := in
	other.Packages = []string{"apache2"}
	now := time.Now()
	all := []*Manifest{
		{Identity: in.Identity(), Role: "web", Inputs: in, Created: now.Add(-2 * time.Hour)},
		{Identity: refreshed.Identity(), Role: "web", Inputs: refreshed, Created: now.Add(-time.Hour)},
		{Identity: other.Identity(), Role: "web", Inputs: other, Created: now},
		{Identity: "sha256:db", Role: "db", Inputs: in, Created: now},
	}
	if got := NewestOfRecipe(all, "web", in.Recipe()); got == nil || got.Identity != refreshed.Identity() {
		t.Errorf("newest of web's recipe: %v, want the refreshed image", got)
	}
	if got := NewestOfRecipe(all, "dns", in.Recipe()); got != nil {
		t.Errorf("a role with no image: %v", got)
	}
}
