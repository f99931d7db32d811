package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// drover runs the CLI in-process and returns its exit code, stdout and stderr.
func drover(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	code := runWith(append([]string{"drover"}, args...), &stdout, &stderr, lookup)
	return code, stdout.String(), stderr.String()
}

// TestValidateGolden runs drover validate on every bad fleet under testdata/validate/invalid: it must
// exit 2, print exactly the golden diagnostics, and point at the positions that the file's first line
// ("# expect: LINE:COL ...") names.
func TestValidateGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/validate/invalid/*.hcl")
	if err != nil || len(files) < 25 {
		t.Fatalf("want at least 25 bad inputs, found %d (%v)", len(files), err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".hcl"), func(t *testing.T) { checkGoldenDiagnostics(t, path, exitUsage, "error") })
	}
}

// TestValidateWarningsGolden runs drover validate on fleets under testdata/validate/warnings: valid
// (exit 0) with exactly the golden warnings, at the positions the first line names.
func TestValidateWarningsGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/validate/warnings/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fleets with warnings (%v)", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".hcl"), func(t *testing.T) { checkGoldenDiagnostics(t, path, exitOK, "warning") })
	}
}

// checkGoldenDiagnostics runs drover validate on path in text and in JSON: the exit code is code,
// the text is path's .golden file (-update rewrites it), and the JSON's diagnostics are all of
// severity, in path, at the positions its first line names.
func checkGoldenDiagnostics(t *testing.T, path string, code int, severity string) {
	checkGoldenDiagnosticsOf(t, func(args ...string) (int, string, string) { return drover(t, nil, args...) }, path, code, severity)
}

// checkGoldenDiagnosticsOf is checkGoldenDiagnostics with run as the CLI (droverWith, for fleets
// of test-only provider types).
func checkGoldenDiagnosticsOf(t *testing.T, run func(args ...string) (int, string, string), path string, code int, severity string) {
	got, _, stderr := run("--fleet", path, "validate")
	if got != code {
		t.Errorf("exit code %d, want %d", got, code)
	}
	checkGoldenText(t, path, stderr)

	got, stdout, _ := run("--output", "json", "--fleet", path, "validate")
	if got != code {
		t.Errorf("json: exit code %d, want %d", got, code)
	}
	var out struct {
		OK          bool `json:"ok"`
		Diagnostics []struct {
			Severity     string
			File         string
			Line, Column int
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	if out.OK != (code == exitOK) {
		t.Errorf("json ok %v with exit %d", out.OK, code)
	}
	var at []string
	for _, d := range out.Diagnostics {
		if d.File != path || d.Severity != severity {
			t.Errorf("a diagnostic of severity %q in file %q, want %q in %q", d.Severity, d.File, severity, path)
		}
		at = append(at, posString(d.Line, d.Column))
	}
	sort.Strings(at)
	if exp := expectedPositions(t, path); strings.Join(at, " ") != strings.Join(exp, " ") {
		t.Errorf("diagnostics at %v, want %v", at, exp)
	}
}

// checkGoldenText compares the diagnostics validate printed for the fleet at path with the golden
// file beside it (PATH without .hcl, plus .golden); -update rewrites it.
func checkGoldenText(t *testing.T, path, stderr string) {
	t.Helper()
	golden := strings.TrimSuffix(path, ".hcl") + ".golden"
	if *update {
		if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/drover -run TestValidate -update to create it)", err)
	}
	if stderr != string(want) {
		t.Errorf("diagnostics differ from %s\n--- got:\n%s\n--- want:\n%s", golden, stderr, want)
	}
}

func posString(line, col int) string {
	b, _ := json.Marshal([]int{line, col})
	return strings.Trim(strings.ReplaceAll(string(b), ",", ":"), "[]")
}

func expectedPositions(t *testing.T, path string) []string {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(src), "\n")
	fields := strings.Fields(strings.TrimPrefix(first, "# expect:"))
	sort.Strings(fields)
	return fields
}

func TestValidateExampleFleet(t *testing.T) {
	code, stdout, stderr := drover(t, nil, "--fleet", "../../examples/homelab/drover.hcl", "validate")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "is valid: 5 role(s)") {
		t.Errorf("stdout %q does not report 5 valid roles (web, db, dns, vault, pi)", stdout)
	}
	// The vault role's binary and the operator's key are made by other commands: warnings, once
	// each at most, and nothing else.
	for _, block := range strings.Split(strings.TrimSpace(stderr), "\nWarning: ")[1:] {
		if !strings.HasPrefix(block, "File not made yet") || !strings.Contains(block, `Role "vault" cannot be built until then.`) {
			t.Errorf("unexpected diagnostic: %s", block)
		}
	}
	if stderr != "" && !strings.HasPrefix(stderr, "Warning: File not made yet") || strings.Count(stderr, "Warning:") > 2 {
		t.Errorf("unexpected stderr: %s", stderr)
	}
}

// TestValidateBrokenExampleCopy breaks a copy of the example fleet and expects exit 2 with the
// position of the break.
func TestValidateBrokenExampleCopy(t *testing.T) {
	src, err := os.ReadFile("../../examples/homelab/drover.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	broken := strings.Replace(string(src), `count   = 2`, `count   = "two"`, 1)
	if broken == string(src) {
		t.Fatal("the example no longer has the line this test breaks")
	}
	path := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	line := strings.Count(broken[:strings.Index(broken, `"two"`)], "\n") + 1
	code, _, stderr := drover(t, nil, "--fleet", path, "validate")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2\n%s", code, stderr)
	}
	if want := path + ":" + posString(line, 15); !strings.Contains(stderr, want) {
		t.Errorf("stderr does not name %s:\n%s", want, stderr)
	}
	if !strings.Contains(stderr, "drover: "+path+" is not valid: ") || !strings.Contains(stderr, "(hint: ") {
		t.Errorf("stderr lacks the one-line reason and hint:\n%s", stderr)
	}
}

// TestExamplesValidate: every example fleet is valid as shipped, without an account or a lab.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/drover.hcl")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		code, stdout, stderr := drover(t, nil, "--fleet", f, "validate")
		if code != 0 || !strings.Contains(stdout, "is valid") {
			t.Errorf("%s: exit %d\n%s%s", f, code, stdout, stderr)
		}
	}
}
