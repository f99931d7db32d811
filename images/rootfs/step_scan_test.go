package rootfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/secrets"
)

func runScanStep(t *testing.T, tree string, req *Request) (multistep.StepAction, multistep.StateBag, string) {
	t.Helper()
	state := new(multistep.BasicStateBag)
	state.Put(keyRequest, req)
	state.Put(keyTree, tree)
	var log bytes.Buffer
	state.Put(keyLog, &log)
	action := (&stepScan{}).Run(context.Background(), state)
	return action, state, log.String()
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		abs := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(abs, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestStepScan(t *testing.T) {
	token := "gh" + "p_" + strings.Repeat("aB3", 12)
	value := "vault-value-" + strings.Repeat("x9", 8)
	fleetDir := t.TempDir()
	allow := filepath.Join(fleetDir, "drover-scan-allow")

	// A clean tree passes and leaves its counts for the manifest.
	clean := writeTree(t, map[string]string{"/etc/motd": "hello\n", "/var/www/html/index.html": "<h1>hi</h1>\n"})
	action, state, log := runScanStep(t, clean, &Request{Role: "web", ScanAllowlist: allow})
	if action != multistep.ActionContinue {
		t.Fatalf("a clean tree halted: %v", state.Get(keyError))
	}
	if st := state.Get(keyScan).(images.ScanStats); st.Files != 2 || st.Findings != 0 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(log, "secret scan: 2 files") {
		t.Errorf("log %q", log)
	}

	// A token and a role's value fail the build, with the findings listed and redacted.
	dirty := writeTree(t, map[string]string{"/etc/app.env": "GITHUB_TOKEN=" + token + "\n", "/etc/app/db.conf": "pw " + value + "\n"})
	action, state, log = runScanStep(t, dirty, &Request{Role: "web", ScanAllowlist: allow, Forbidden: []secrets.Secret{secrets.Secret(value)}})
	if action != multistep.ActionHalt {
		t.Fatal("a tree with a secret passed")
	}
	err := state.Get(keyError).(*StepError).Err
	var se *ScanError
	if !errors.As(err, &se) || len(se.Findings) != 2 {
		t.Fatalf("error %v, want a ScanError with two findings", err)
	}
	msg := err.Error()
	for _, want := range []string{"found 2 secret(s)", "/etc/app.env:1: github-token: ghp_…[REDACTED]",
		"/etc/app/db.conf:1: forbidden-value: value of secret #1", "add an allowlist entry to " + allow, "such as github-token:/etc/app.env"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	for _, out := range []string{msg, log} {
		if strings.Contains(out, token[4:]) || strings.Contains(out, value[4:]) {
			t.Fatalf("a secret leaked:\n%s", out)
		}
	}
	if _, ok := state.GetOk(keyScan); ok {
		t.Error("a failed scan left stats")
	}

	// The allowlist next to the fleet file lets both through.
	if err := os.WriteFile(allow, []byte("github-token:/etc/app.env\nforbidden-value:/etc/app/db.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	action, state, _ = runScanStep(t, dirty, &Request{Role: "web", ScanAllowlist: allow, Forbidden: []secrets.Secret{secrets.Secret(value)}})
	if action != multistep.ActionContinue {
		t.Fatalf("allowlisted findings halted: %v", state.Get(keyError))
	}
	if st := state.Get(keyScan).(images.ScanStats); st.Allowlisted != 2 || st.ForbiddenValues != 1 {
		t.Errorf("stats %+v", st)
	}

	// A bad allowlist fails the build, naming the file and line.
	if err := os.WriteFile(allow, []byte("no-such-rule:/etc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	action, state, _ = runScanStep(t, clean, &Request{Role: "web", ScanAllowlist: allow})
	if action != multistep.ActionHalt {
		t.Fatal("a bad allowlist passed")
	}
	if err := state.Get(keyError).(*StepError).Err; !strings.Contains(err.Error(), allow+":1") {
		t.Errorf("a bad allowlist: %v", err)
	}
}

// TestScanStepOrder keeps the scan after hygiene (which removes SSH host keys and histories) and
// before the disk is made.
func TestScanStepOrder(t *testing.T) {
	var names []string
	for _, s := range steps() {
		names = append(names, s.name)
	}
	order := strings.Join(names, " ")
	if !strings.Contains(order, "hygiene scan") || strings.Index(order, "scan") > strings.Index(order, "disk") {
		t.Errorf("steps: %s", order)
	}
}

func TestNewRequestScanAllowlist(t *testing.T) {
	f, role := webFleet()
	f.Dir = t.TempDir()
	req, err := NewRequest(f, role, Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: agentDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if req.ScanAllowlist != filepath.Join(f.Dir, "drover-scan-allow") || req.Inputs.ScanAllowlist != "" {
		t.Errorf("allowlist %q, input %q", req.ScanAllowlist, req.Inputs.ScanAllowlist)
	}
	if err := os.WriteFile(req.ScanAllowlist, []byte("/srv/x/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req2, err := NewRequest(f, role, Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: agentDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if req2.Inputs.ScanAllowlist == "" || req2.Identity() == req.Identity() {
		t.Error("the allowlist file is not part of the identity")
	}
}
