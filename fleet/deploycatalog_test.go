package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testDeployCatalog stands in for rollout's registries (cmd/drover's golden tests use the real
// ones): strategies bluegreen and solo (one instance only), "later" a strategy not built yet.
type testDeployCatalog struct{}

func (testDeployCatalog) Types(kind string) []string {
	switch kind {
	case DeployStrategy:
		return []string{"bluegreen", "solo"}
	case DeployHealth:
		return []string{"http", "https", "tcp", "dns", "vault"}
	case DeployCutover:
		return []string{"dns", "ip", "none", "weights"}
	}
	return nil
}

func (testDeployCatalog) Admit(role *Role) (bool, []Refusal) {
	switch role.Deploy.Strategy {
	case "bluegreen":
		return true, nil
	case "solo":
		if role.Deploy.Count > 1 {
			return true, []Refusal{{Attribute: "count", Summary: "Too many", Detail: fmt.Sprintf("solo deploys one, not %d.", role.Deploy.Count)}}
		}
		return true, nil
	case "later":
		return true, []Refusal{{Attribute: "strategy", Summary: "Strategy not available yet", Detail: "later is not built."}}
	}
	return false, nil
}

const deployFleet = `
compute "t" "lab" {}

role "web" {
  image { base = "debian-bookworm" }
  deploy {
    compute  = "lab"
%s
  }
}
`

// The deploy catalog's names and its strategies' refusals are reported at the attribute they are
// about; names it does not know get the catalog's list and a suggestion.
func TestDeployCatalogDecidesNames(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // "" when valid; else line:col and text the diagnostic holds
	}{
		{"known strategy", `    strategy = "solo"`, ""},
		{"strategy refuses count", "    strategy = \"solo\"\n    count    = 3", `9:16 Too many: solo deploys one, not 3.`},
		{"strategy not built", `    strategy = "later"`, `8:16 Strategy not available yet: later is not built.`},
		{"unknown strategy", `    strategy = "sola"`, `8:16 Invalid value: "strategy" must be one of "bluegreen", "solo", got "sola". Did you mean "solo"?`},
		{"unknown health type", "    health \"htp\" { port = 80 }", `8:12 Unknown health check type: Health check type must be one of "http", "https", "tcp", "dns", "vault", got "htp". Did you mean "http"?`},
		{"cutover the catalog adds", "    cutover \"weights\" { drain = \"5s\" }", ""},
		{"unknown cutover type", `    cutover "bgp" {}`, `8:13 Unknown cutover type: Cutover type must be one of "dns", "ip", "none", "weights", got "bgp". Did you mean "ip"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := load(t, fmt.Sprintf(deployFleet, tc.body), Options{})
			if tc.want == "" {
				if diags.HasErrors() {
					t.Fatalf("want valid, got %v", diags)
				}
				if tc.name == "cutover the catalog adds" && f.Role("web").Deploy.Cutover.Drain.String() != "5s" {
					t.Errorf("cutover %+v", f.Role("web").Deploy.Cutover)
				}
				return
			}
			if diags.Errors() != 1 {
				t.Fatalf("want 1 error, got %v", diags)
			}
			d := diags.Diags[0]
			got := fmt.Sprintf("%d:%d %s: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail)
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Without a deploy catalog a deploy block cannot be checked: that is a bug of the caller, said so.
func TestNoDeployCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drover.hcl")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(deployFleet, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := Load(path, Options{Providers: testCatalog{}, LookupEnv: func(string) (string, bool) { return "", false }})
	if diags.Errors() != 1 || !strings.Contains(diags.Diags[0].Summary, "No deploy catalog") {
		t.Fatalf("got %v", diags)
	}
}
