package importcheck

import "testing"

func TestRules(t *testing.T) {
	const mod = "example.com/d"
	pkgs := []Package{
		{ImportPath: mod + "/plugins/compute/qemu", Imports: []string{mod + "/plugins/compute", mod + "/fleet"}},
		{ImportPath: mod + "/rollout", Imports: []string{mod + "/plugins/compute", mod + "/plugins/compute/qemu", mod + "/fleet"}},
		{ImportPath: mod + "/images", Imports: []string{mod + "/plugins/all", mod + "/rollout", "fmt"}},
		{ImportPath: mod + "/fleet", Imports: []string{mod + "/plugins/config"}},
		{ImportPath: mod + "/cmd/drover", Imports: []string{mod + "/plugins/all", mod + "/rollout", mod + "/images", mod + "/plugins/dns/verify"}},
		{ImportPath: mod + "/cmd/packer-plugin-drover", Imports: []string{mod + "/plugins/compute/qemu/internal/x"}},
		{ImportPath: mod + "/plugins/all", Imports: []string{mod + "/plugins/compute/qemu", mod + "/plugins/ip/loopback", mod + "/plugins/compute"}},
		{ImportPath: mod + "/plugins/ip/loopback", Imports: []string{mod + "/plugins/compute", mod + "/plugins/compute/qemu"}},
		{ImportPath: mod + "/plugins/ip/loopback/internal/y", Imports: []string{mod + "/plugins/ip/loopback", mod + "/plugins/dns/verify"}},
	}
	got := Check(mod, pkgs)
	want := map[string]bool{
		mod + "/plugins/compute/qemu imports " + mod + "/fleet":                               true,
		mod + "/rollout imports " + mod + "/plugins/compute/qemu":                             true,
		mod + "/images imports " + mod + "/plugins/all":                                       true,
		mod + "/images imports " + mod + "/rollout":                                           true,
		mod + "/fleet imports " + mod + "/plugins/config":                                     true,
		mod + "/cmd/packer-plugin-drover imports " + mod + "/plugins/compute/qemu/internal/x": true,
		mod + "/plugins/ip/loopback imports " + mod + "/plugins/compute/qemu":                 true,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d: %v", len(got), len(want), got)
	}
	for _, v := range got {
		if !want[v.From+" imports "+v.To] {
			t.Errorf("unexpected violation %s", v)
		}
	}
}

// TestRepository checks drover itself, so `go test ./...` fails on a wrong import even without lint.
func TestRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the whole module")
	}
	module, pkgs, err := List("../..", "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, v := range Check(module, pkgs) {
		t.Error(v)
	}
}
