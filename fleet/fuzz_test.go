package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// FuzzLoad feeds the fleet loader arbitrary files, starting from every golden input and the example
// fleet. Whatever the input, Load returns (no panic, no hang), a fleet exactly when there is no
// error, and diagnostics that can be printed, each within the file.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/validate/*/*.hcl")
	seeds = append(seeds, "../examples/homelab/drover.hcl")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(goodFleet))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte("server {}\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "drover.hcl")
	opts := Options{Providers: testCatalog{}, Deploy: testDeployCatalog{}, LookupEnv: func(name string) (string, bool) {
		return "from-env", name == "SET"
	}}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > MaxFleetFileSize {
			return
		}
		parser := hclparse.NewParser()
		fl, diags := loadSource(parser, &Diagnostics{Files: parser.Files()}, src, path, path, opts)
		if (fl == nil) != diags.HasErrors() {
			t.Fatalf("fleet %v with errors %v", fl != nil, diags.HasErrors())
		}
		lines := strings.Count(string(src), "\n") + 1
		for _, d := range diags.Diags {
			if d.Summary == "" {
				t.Fatalf("a diagnostic without a summary: %+v", d)
			}
			if s := d.Subject; s != nil && (s.Start.Line < 1 || s.Start.Line > lines+1) {
				t.Fatalf("diagnostic %q at line %d of a %d-line file", d.Summary, s.Start.Line, lines)
			}
		}
		var b strings.Builder
		if err := diags.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		_ = diags.JSON()
		if diags.HasErrors() {
			_ = diags.Error()
		}
	})
}
