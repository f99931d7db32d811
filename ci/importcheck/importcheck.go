// Package importcheck enforces the direction of imports that DESIGN.md §2 sets: data flows from the
// fleet file to images to rollouts to providers, and only cmd/ wires concrete providers in.
package importcheck

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
)

// Package is what `go list -json` says about one package, as much as the rules need.
type Package struct {
	ImportPath string
	Imports    []string
}

// Violation is one import that breaks a rule.
type Violation struct {
	From, To, Rule string
}

func (v Violation) String() string { return fmt.Sprintf("%s imports %s: %s", v.From, v.To, v.Rule) }

// Check applies the rules to packages of the module whose path is module. The concrete providers are
// the packages plugins/all imports below plugins/<kind>/ (its registry is the one list of them).
func Check(module string, pkgs []Package) []Violation {
	providers := concreteProviders(module, pkgs)
	var out []Violation
	for _, p := range pkgs {
		from, ok := relative(module, p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			to, ok := relative(module, imp)
			if !ok {
				continue
			}
			rule := broken(from, to)
			if rule == "" {
				rule = crossesProviders(from, to, providers)
			}
			if rule != "" {
				out = append(out, Violation{From: p.ImportPath, To: imp, Rule: rule})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// broken returns the rule that an import from one module-relative package path to another breaks.
func broken(from, to string) string {
	under := func(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }
	switch {
	case under(to, "cmd"):
		return "nothing imports a command"
	case under(to, "plugins/all") && !under(from, "cmd"):
		return "only cmd/ imports the provider registry plugins/all"
	case under(from, "plugins") && (under(to, "fleet") || under(to, "images") || under(to, "rollout") || under(to, "ci")):
		return "providers import no fleet, images, rollout or ci package"
	case under(from, "fleet") && (under(to, "images") || under(to, "rollout") || under(to, "plugins")):
		return "fleet is the domain model: it gets providers through its ProviderCatalog interface"
	case (under(from, "images") || under(from, "rollout")) && under(to, "plugins") && strings.Count(to, "/") > 1:
		return "images and rollout import only the interface packages plugins/<kind>, never a concrete provider"
	case under(from, "images") && under(to, "rollout"):
		return "data flows fleet -> images -> rollout, not back"
	}
	return ""
}

// concreteProviders are the module-relative paths of the provider packages plugins/all registers.
func concreteProviders(module string, pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		if rel, _ := relative(module, p.ImportPath); rel != "plugins/all" {
			continue
		}
		for _, imp := range p.Imports {
			if to, ok := relative(module, imp); ok && strings.HasPrefix(to, "plugins/") && strings.Count(to, "/") >= 2 {
				out = append(out, to)
			}
		}
	}
	return out
}

// crossesProviders returns the rule an import breaks by reaching a concrete provider from where it
// may not: cmd/ opens providers through plugins/all only, and no provider imports another (they
// share capabilities through their kind packages, and API helpers through plugins/internal/...).
func crossesProviders(from, to string, providers []string) string {
	of := func(p string) string {
		for _, root := range providers {
			if p == root || strings.HasPrefix(p, root+"/") {
				return root
			}
		}
		return ""
	}
	toProvider := of(to)
	switch {
	case toProvider == "":
		return ""
	case from == "cmd" || strings.HasPrefix(from, "cmd/"):
		return "cmd/ opens providers through the registry plugins/all, never imports a concrete provider"
	case of(from) != "" && of(from) != toProvider:
		return "no provider imports another concrete provider"
	}
	return ""
}

func relative(module, path string) (string, bool) {
	if !strings.HasPrefix(path, module+"/") {
		return "", false
	}
	return strings.TrimPrefix(path, module+"/"), true
}

// List runs `go list -json` for the patterns in dir and decodes its stream of packages.
func List(dir string, patterns ...string) (module string, pkgs []Package, err error) {
	modCmd := exec.Command("go", "list", "-m")
	modCmd.Dir = dir
	m, err := modCmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("importcheck: go list -m: %w", err)
	}
	cmd := exec.Command("go", append([]string{"list", "-json"}, patterns...)...)
	cmd.Dir = dir
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("importcheck: go list: %w", err)
	}
	dec := json.NewDecoder(outPipe)
	for {
		var p Package
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", nil, fmt.Errorf("importcheck: decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		return "", nil, fmt.Errorf("importcheck: go list: %w", err)
	}
	return strings.TrimSpace(string(m)), pkgs, nil
}
