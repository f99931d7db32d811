package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// comingSoonConfig is the config of a test-only compute type that cannot be opened.
type comingSoonConfig struct {
	Region string `hcl:"region"`
}

// TestValidateUnavailableGolden runs drover validate on the fleets under
// testdata/validate/unavailable, whose blocks are of a registered type that cannot do its job yet
// (its factory has no Open, as a provider still being built has): validate refuses them with
// exactly the golden diagnostics. Every built-in type is available, so the type is the test's own.
func TestValidateUnavailableGolden(t *testing.T) {
	soon := all.Providers{Compute: []compute.Factory{{
		Type:      "comingsoon",
		Summary:   "a compute type still being built",
		NewConfig: func(config.LookupEnv) (any, error) { return &comingSoonConfig{}, nil },
	}}}
	files, err := filepath.Glob("../../testdata/validate/unavailable/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fleets of unavailable types (%v)", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".hcl"), func(t *testing.T) {
			checkGoldenDiagnosticsOf(t, func(args ...string) (int, string, string) { return droverWith(t, soon, args...) }, path, exitUsage, "error")
		})
	}
}
