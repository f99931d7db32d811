package main

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestValidateComposeGolden runs drover validate on a fleet whose compose blocks and Compose file
// hold every problem validate reports about them: exit 2, exactly the golden diagnostics (-update
// rewrites them), and in JSON the positions the fleet file's first line names, as FILE:LINE:COL,
// whether in the fleet file or in the Compose file (an image not pinned or not baked is reported
// at the image in the Compose file, naming the service).
func TestValidateComposeGolden(t *testing.T) {
	path := "../../testdata/validate/compose/bad_compose.hcl"
	code, _, stderr := drover(t, nil, "--fleet", path, "validate")
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	checkGoldenText(t, path, stderr)
	_, stdout, _ := drover(t, nil, "--output", "json", "--fleet", path, "validate")
	var out struct {
		Diagnostics []struct {
			Severity     string
			File         string
			Line, Column int
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	var at []string
	for _, d := range out.Diagnostics {
		if d.Severity != "error" {
			t.Errorf("a diagnostic of severity %q", d.Severity)
		}
		at = append(at, filepath.Base(d.File)+":"+posString(d.Line, d.Column))
	}
	sort.Strings(at)
	if exp := expectedPositions(t, path); strings.Join(at, " ") != strings.Join(exp, " ") {
		t.Errorf("diagnostics at %v, want %v", at, exp)
	}
}
