package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag", "validate"},
		{"frobnicate"},
		{"--output", "yaml", "version"},
		{"--fleet", "../../examples/homelab/drover.hcl", "--var", "novalue", "validate"},
		{"--fleet", "/nonexistent/drover.hcl", "validate"},
	} {
		code, _, stderr := drover(t, nil, args...)
		if code != exitUsage {
			t.Errorf("drover %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "drover: ") || !strings.Contains(last, "(hint: ") {
			t.Errorf("drover %v: last stderr line %q is not a one-line reason with a hint", args, last)
		}
	}
}

func TestJSONFailureIsOneObject(t *testing.T) {
	code, stdout, _ := drover(t, nil, "--output", "json", "frobnicate")
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	var out struct {
		OK       bool   `json:"ok"`
		Error    string `json:"error"`
		Hint     string `json:"hint"`
		ExitCode int    `json:"exit_code"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("more than one JSON value on stdout:\n%s", stdout)
	}
	if out.OK || !strings.Contains(out.Error, "frobnicate") || out.Hint == "" || out.ExitCode != 2 {
		t.Errorf("unexpected failure object %+v", out)
	}
}

func TestHelpExplainsFlags(t *testing.T) {
	code, stdout, _ := drover(t, nil, "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--fleet", "--state", "--output", "--var", "validate", "doctor", "version", "DROVER_FLEET"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("drover --help does not mention %s", want)
		}
	}
	for cmd, wants := range map[string][]string{
		"validate": {"file:line:col", "Exit code", "Examples"},
		"doctor":   {"--fix", "KVM", "apt-get"},
	} {
		_, out, _ := drover(t, nil, cmd, "--help")
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("drover %s --help lacks %q:\n%s", cmd, w, out)
			}
		}
	}
}

func TestVersionJSON(t *testing.T) {
	code, stdout, _ := drover(t, nil, "--output", "json", "version")
	var v map[string]string
	if code != exitOK || json.Unmarshal([]byte(stdout), &v) != nil || v["version"] == "" || v["go"] == "" {
		t.Errorf("exit %d, output %q", code, stdout)
	}
}

// TestDoctorReportsEveryCheck runs the real host checks: the JSON lists each one with a status, and a
// failing check makes the exit code 1 with a hint to run --fix.
func TestDoctorReportsEveryCheck(t *testing.T) {
	code, stdout, _ := drover(t, nil, "--state", t.TempDir(), "--output", "json", "doctor")
	var out struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name, Status, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("doctor JSON: %v\n%s", err, stdout)
	}
	names := map[string]bool{}
	failing := 0
	for _, c := range out.Checks {
		names[c.Name] = true
		if c.Status == "fail" {
			failing++
			if c.Fix == "" {
				t.Errorf("failing check %s has no fix", c.Name)
			}
		}
	}
	for _, want := range []string{"qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "mtools", "knot", "binfmt-arm64", "kvm", "disk-space"} {
		if !names[want] {
			t.Errorf("doctor does not check %s", want)
		}
	}
	if (failing == 0) != (code == exitOK) || out.OK != (failing == 0) {
		t.Errorf("%d failing checks but exit %d, ok=%v", failing, code, out.OK)
	}
}
