package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

const exampleFleet = "../../examples/homelab/drover.hcl"

// hostileLines are command lines a careless or hostile user types: each is a usage error (exit 2),
// reported on one line with a hint, and nothing runs.
var hostileLines = []struct {
	name string
	args []string
	want string // in the one-line reason
}{
	{"bad flag after the command", []string{"validate", "--bogus"}, "flag provided but not defined"},
	{"flag value missing at the end", []string{"validate", "--fleet"}, "--fleet needs a value"},
	{"flag value empty", []string{"--fleet=", "validate"}, "--fleet needs a value, got an empty one"},
	{"flag value is another flag", []string{"--fleet", "--log-level", "info", "validate"}, "got the flag --log-level"},
	{"flags and no command", []string{"--fleet", exampleFleet}, "no command given"},
	{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
	{"unknown subcommand", []string{"rollout", "frobnicate"}, `unknown command "rollout frobnicate"`},
	{"command group alone", []string{"rollout"}, "drover rollout needs a command"},
	{"extra argument", []string{"--fleet", exampleFleet, "validate", "extra"}, "takes no arguments"},
	{"missing role", []string{"--fleet", exampleFleet, "rollout", "status"}, "needs ROLE"},
	{"two roles", []string{"--fleet", exampleFleet, "rollout", "start", "web", "db"}, "takes ROLE, got 2 arguments"},
	{"unknown role", []string{"--fleet", exampleFleet, "rollout", "start", "wbe"}, `no role "wbe"`},
	{"unknown role in history", []string{"--fleet", exampleFleet, "rollout", "history", "nope"}, `no role "nope"`},
	{"unknown role in plan", []string{"--fleet", exampleFleet, "plan", "web", "nope"}, `no role "nope"`},
	{"undeclared --var", []string{"--fleet", exampleFleet, "--var", "nope=1", "validate"}, "is not valid"},
	{"completion of an unknown shell", []string{"completion", "tcsh"}, `no completion for shell "tcsh"`},
}

func TestHostileCommandLinesAreUsageErrors(t *testing.T) {
	for _, tc := range hostileLines {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := drover(t, nil, append([]string{"--state", t.TempDir()}, tc.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout is not empty (help printed?):\n%s", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "drover: ") || !strings.Contains(last, "(hint: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last stderr line %q is not one line with %q and a hint", last, tc.want)
			}
		})
	}
}

// TestJSONAlwaysOneObject: with --output json, whatever failed (the flags' parse included),
// stdout holds exactly one JSON object saying so, and nothing else.
func TestJSONAlwaysOneObject(t *testing.T) {
	for _, tc := range hostileLines {
		for _, spelling := range [][]string{{"--output", "json"}, {"-o=json"}} {
			t.Run(tc.name+" "+strings.Join(spelling, " "), func(t *testing.T) {
				args := append(append([]string{"--state", t.TempDir()}, tc.args...), spelling...)
				code, stdout, _ := drover(t, nil, args...)
				if code != exitUsage {
					t.Errorf("exit %d, want 2", code)
				}
				var out struct {
					OK          *bool           `json:"ok"`
					ExitCode    int             `json:"exit_code"`
					Diagnostics json.RawMessage `json:"diagnostics"` // validate's own shape
				}
				dec := json.NewDecoder(strings.NewReader(stdout))
				if err := dec.Decode(&out); err != nil {
					t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
				}
				if dec.More() {
					t.Errorf("more than one JSON value on stdout:\n%s", stdout)
				}
				if out.OK == nil || *out.OK || (out.ExitCode != 2 && out.Diagnostics == nil) {
					t.Errorf("failure object %+v", out)
				}
			})
		}
	}
	// The environment's DROVER_OUTPUT counts as well.
	code, stdout, _ := drover(t, map[string]string{"DROVER_OUTPUT": "json"}, "validate", "--bogus")
	if code != exitUsage || !json.Valid([]byte(stdout)) {
		t.Errorf("DROVER_OUTPUT=json: exit %d, stdout %q", code, stdout)
	}
}

// TestPlanJSONOnABadFleetHasPositions: a command other than validate, on a bad fleet, gives the
// diagnostics with their positions in its JSON failure.
func TestPlanJSONOnABadFleetHasPositions(t *testing.T) {
	path := "../../testdata/validate/invalid/port_out_of_range.hcl"
	code, stdout, _ := drover(t, nil, "--fleet", path, "--state", t.TempDir(), "--output", "json", "plan")
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	var out struct {
		Diagnostics []struct {
			File         string
			Line, Column int
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	exp := expectedPositions(t, path)
	if len(out.Diagnostics) != len(exp) {
		t.Fatalf("diagnostics %+v, want positions %v", out.Diagnostics, exp)
	}
	for i, d := range out.Diagnostics {
		if d.File != path || posString(d.Line, d.Column) != exp[i] {
			t.Errorf("diagnostic %d at %s:%d:%d, want %s:%s", i, d.File, d.Line, d.Column, path, exp[i])
		}
	}
}

// TestFlagsAfterTheRole: `plan web --image X` reads --image (the missing image X is the failure),
// as `plan --image X web` does.
func TestFlagsAfterTheRole(t *testing.T) {
	for _, args := range [][]string{{"plan", "web", "--image", "X"}, {"plan", "--image", "X", "web"}, {"plan", "web", "--image=X"}} {
		code, _, stderr := drover(t, nil, append([]string{"--fleet", exampleFleet, "--state", t.TempDir()}, args...)...)
		if code != exitFailure || !strings.Contains(stderr, `image "X"`) {
			t.Errorf("drover %v: exit %d, stderr %q; want the image X looked up", args, code, stderr)
		}
	}
}

// TestHelpCommand: drover help [COMMAND] is drover [COMMAND] --help.
func TestHelpCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "rollout"}, {"rollout", "--help"}} {
		code, stdout, _ := drover(t, nil, args...)
		if code != exitOK || !strings.Contains(stdout, "USAGE:") {
			t.Errorf("drover %v: exit %d\n%s", args, code, stdout)
		}
	}
	if code, _, _ := drover(t, nil, "help", "nope"); code != exitUsage {
		t.Errorf("drover help nope: exit %d, want 2", code)
	}
}

func TestIntersperse(t *testing.T) {
	a := newApp(nil, nil, nil)
	global := valueFlags(a.Flags)
	for in, want := range map[string]string{
		"drover rollout start web --image X --force": "drover rollout start --image X --force web",
		"drover --fleet f.hcl plan web db --image=X": "drover --fleet f.hcl plan --image=X web db",
		"drover plan web -- --image":                 "drover plan web -- --image",
		"drover frobnicate web --image X":            "drover frobnicate web --image X",
	} {
		if got := strings.Join(intersperse(a.Commands, global, strings.Fields(in)), " "); got != want {
			t.Errorf("intersperse(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDedupePrefixes(t *testing.T) {
	for in, want := range map[string]string{
		`compute "prod": compute "prod": the aws provider cannot launch instances yet`: `compute "prod": the aws provider cannot launch instances yet`,
		"a: b: a: b": "a: b: a: b",
		"plain":      "plain",
	} {
		if got := dedupePrefixes(in); got != want {
			t.Errorf("dedupePrefixes(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFleetFIFOAndDevice: --fleet naming a FIFO or a device is refused at once, not read for ever.
func TestFleetFIFOAndDevice(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "drover.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan string, 1)
		go func() {
			code, _, stderr := drover(t, nil, "--fleet", path, "validate")
			if code != exitUsage {
				stderr = "exit code not 2: " + stderr
			}
			done <- stderr
		}()
		select {
		case stderr := <-done:
			if !strings.Contains(stderr, "not a regular file") {
				t.Errorf("--fleet %s: %s", path, stderr)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("--fleet %s hangs", path)
		}
	}
}

func TestVersionReportsBuildInfo(t *testing.T) {
	code, stdout, _ := drover(t, nil, "--output", "json", "version")
	var v buildInfo
	if code != exitOK || json.Unmarshal([]byte(stdout), &v) != nil {
		t.Fatalf("exit %d, output %q", code, stdout)
	}
	if v.Module != "github.com/drover-dev/drover" || v.Version == "" || v.Go == "" {
		t.Errorf("version %+v lacks the module path, version or Go version", v)
	}
	_, text, _ := drover(t, nil, "version")
	if !strings.Contains(text, "module   github.com/drover-dev/drover") || !strings.Contains(text, "revision ") {
		t.Errorf("drover version:\n%s", text)
	}
}

// TestVersionReadsVCSSettings: the revision, its time and the modified flag come from the build
// info's vcs.* settings.
func TestVersionReadsVCSSettings(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/drover-dev/drover", Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "ea04c19ee3611dc811891e6e4c79aebf8ad01919"},
		{Key: "vcs.time", Value: "2026-12-04T09:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := fromBuildInfo("v0.3.0", info)
	want := buildInfo{Version: "v0.3.0", Module: "github.com/drover-dev/drover", Revision: "ea04c19ee3611dc811891e6e4c79aebf8ad01919",
		RevisionTime: "2026-12-04T09:00:00Z", Modified: "true", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if got != want {
		t.Errorf("fromBuildInfo = %+v, want %+v", got, want)
	}
}

func TestCompletionAndMan(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, stdout, _ := drover(t, nil, "completion", shell)
		if code != exitOK || !strings.Contains(stdout, "rollout") || !strings.Contains(stdout, "fleet") || !strings.Contains(stdout, "history") {
			t.Errorf("completion %s: exit %d\n%s", shell, code, stdout)
		}
		if shell == "bash" {
			if bash, err := exec.LookPath("bash"); err == nil {
				script := filepath.Join(t.TempDir(), "c.sh")
				if err := os.WriteFile(script, []byte(stdout+"\nCOMP_WORDS=(drover rollout st); COMP_CWORD=2; _drover; echo \"${COMPREPLY[@]}\"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(bash, script).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "start status" {
					t.Errorf("bash completion of \"drover rollout st\": %v %q, want \"start status\"", err, out)
				}
			}
		}
	}
	code, stdout, _ := drover(t, nil, "man")
	if code != exitOK || !strings.HasPrefix(stdout, ".nh\n.TH drover 1") || !strings.Contains(stdout, "rollout") {
		t.Errorf("man: exit %d\n%.300s", code, stdout)
	}
}

// TestRolloutJSONIsOneObject: a rollout command with --output json prints one object on stdout
// (its result) and its events as JSON lines on stderr, even when there is nothing to do.
func TestRolloutJSONIsOneObject(t *testing.T) {
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	src := "compute \"qemu\" \"lab\" {}\nrole \"web\" {\n  image {\n    base = \"debian-bookworm\"\n  }\n  deploy {\n    compute = \"lab\"\n  }\n}\n"
	if err := os.WriteFile(fleetFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := drover(t, nil, "--fleet", fleetFile, "--output", "json", "rollout", "promote", "web")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var out struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if err := dec.Decode(&out); err != nil || dec.More() || !out.OK || !strings.Contains(out.Message, "nothing to do") {
		t.Errorf("stdout is not one result object (%v):\n%s", err, stdout)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev struct {
			Event string `json:"event"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Event != "rollout" {
			t.Errorf("stderr line is not a rollout event: %q", line)
		}
	}
}
