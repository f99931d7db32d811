package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/scan"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
)

func TestImagesScanRules(t *testing.T) {
	code, stdout, _ := drover(t, nil, "images", "scan", "--rules")
	if code != 0 || !strings.Contains(stdout, "private-key ") || !strings.Contains(stdout, "forbidden-value ") || strings.Count(stdout, "\n") != len(scan.Rules())+1 {
		t.Errorf("images scan --rules: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = drover(t, nil, "--output", "json", "images", "scan", "--rules")
	var out struct {
		Rules []scan.RuleInfo `json:"rules"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil || len(out.Rules) != len(scan.Rules())+1 || out.Rules[0].Description == "" {
		t.Errorf("images scan --rules --output json: exit %d %v\n%s", code, err, stdout)
	}
}

func TestImagesScanArguments(t *testing.T) {
	state := t.TempDir()
	seedCatalog(t, state, 1) // a manifest without artifacts

	for _, args := range [][]string{{"images", "scan"}, {"images", "scan", "web", "db"}} {
		code, _, stderr := drover(t, nil, append([]string{"--state", state}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "images scan takes one image") || !strings.Contains(stderr, "(hint: ") {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	code, _, stderr := drover(t, nil, "--state", state, "images", "scan", "nosuchrole")
	if code != exitFailure || !strings.Contains(stderr, "no such image") || !strings.Contains(stderr, "(hint: drover images list") {
		t.Errorf("an unknown image: exit %d\n%s", code, stderr)
	}
	code, _, stderr = drover(t, nil, "--state", state, "images", "scan", "web")
	if code != exitFailure || !strings.Contains(stderr, "has no raw disk to scan") || !strings.Contains(stderr, "drover build --force web") {
		t.Errorf("an image without a raw disk: exit %d\n%s", code, stderr)
	}
	code, stdout, _ := drover(t, nil, "--state", state, "--output", "json", "images", "scan", "nosuchrole")
	var obj map[string]any
	if code != exitFailure || json.Unmarshal([]byte(stdout), &obj) != nil || obj["ok"] != false || obj["exit_code"] != float64(exitFailure) {
		t.Errorf("JSON of an unknown image: exit %d\n%s", code, stdout)
	}
	code, _, stderr = drover(t, nil, "--state", state, "images", "scan", "--allowlist", "/nonexistent", "web")
	if code != exitUsage {
		t.Errorf("a missing --allowlist: exit %d\n%s", code, stderr)
	}
}

// fakeBroker gives a role's values; images scan needs nothing else of a Broker.
type fakeBroker struct{ values []secrets.Secret }

func (b *fakeBroker) EnsureRole(context.Context, secrets.RoleSpec) (secrets.RoleRef, error) {
	return secrets.RoleRef{}, errors.New("not here")
}
func (b *fakeBroker) IssueSecretID(context.Context, string, map[string]string, []netip.Prefix, time.Duration) (secrets.Wrapped, error) {
	return secrets.Wrapped{}, errors.New("not here")
}
func (b *fakeBroker) DestroySecretID(context.Context, string, string) error {
	return errors.New("not here")
}
func (b *fakeBroker) Values(_ context.Context, role string) ([]secrets.Secret, error) {
	if role != "web" {
		return nil, secrets.ErrNotFound
	}
	return b.values, nil
}

// catalogImage puts a web image whose raw disk is a bare ext4 filesystem of the files into the
// catalog (the scan finds the root filesystem in a GPT, an MBR or a bare filesystem alike).
func catalogImage(t *testing.T, state string, files map[string]string) string {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (e2fsprogs)", tool)
		}
	}
	src := t.TempDir()
	for p, content := range files {
		abs := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(abs, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id := "sha256:" + strings.Repeat("5c", 32)
	s, err := images.OpenCatalog(state).Stage(id)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, filepath.Join(s.Dir, "disk.raw"), "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if err := s.Commit(&images.Manifest{Identity: id, Role: "web", Created: time.Now(),
		Artifacts: []images.Artifact{{Format: "raw", File: "disk.raw"}}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestImagesScan(t *testing.T) {
	token := "gh" + "p_" + strings.Repeat("Zq7", 12)
	value := "db-" + strings.Repeat("k3Y", 6)
	state := t.TempDir()
	catalogImage(t, state, map[string]string{
		"/etc/motd":                 "hello\n",
		"/etc/app/app.env":          "GITHUB_TOKEN=" + token + "\n",
		"/etc/app/db.txt":           "dsn " + value + "\n",
		"/var/www/html/index.html":  "<h1>hi</h1>\n",
		"/etc/ssl/certs/README.txt": "certificates only\n",
	})

	// No fleet file: the tree is scanned, the values are not, and the output says so.
	noFleet := filepath.Join(t.TempDir(), "drover.hcl")
	code, stdout, stderr := drover(t, nil, "--fleet", noFleet, "--state", state, "images", "scan", "web")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, stdout, stderr)
	}
	for _, want := range []string{"image      web@5c5c5c5c5c5c", "disk       not checked: no fleet file", "FILE", "/etc/app/app.env  1     github-token  ghp_…[REDACTED]", "1 finding(s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "1 secret(s) found in web@5c5c5c5c5c5c (hint: ") || !strings.Contains(stderr, "github-token:/etc/app/app.env") {
		t.Errorf("stderr:\n%s", stderr)
	}

	// An allowlist next to the fleet file silences the token.
	if err := os.WriteFile(filepath.Join(filepath.Dir(noFleet), "drover-scan-allow"), []byte("github-token:/etc/app/app.env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = drover(t, nil, "--fleet", noFleet, "--state", state, "images", "scan", "web")
	if code != exitOK || !strings.Contains(stdout, "no secrets found") || !strings.Contains(stdout, "1 finding(s) allowlisted") {
		t.Errorf("with an allowlist: exit %d\n%s%s", code, stdout, stderr)
	}

	// A fleet with a vault block: the role's values are looked for in the tree and on the disk.
	// The example with web declaring a secret (the example itself leaves it out until the demo runs
	// a lab Vault).
	fleetDir := t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../examples/homelab/.", fleetDir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	hcl, err := os.ReadFile(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	withSecret := strings.Replace(string(hcl), `run     = ["systemctl enable nginx"]`, `run     = ["systemctl enable nginx"]
    secrets = ["kv/data/web/tls"]`, 1)
	if withSecret == string(hcl) {
		t.Fatal("the example's web role changed: cannot add its secret")
	}
	if err := os.WriteFile(fleetFile, []byte(withSecret), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(old func(context.Context, *fleet.Fleet, config.LookupEnv) (secrets.Broker, error)) {
		openSecrets = old
	}(openSecrets)
	openSecrets = func(context.Context, *fleet.Fleet, config.LookupEnv) (secrets.Broker, error) {
		return &fakeBroker{values: []secrets.Secret{secrets.Secret("short"), secrets.Secret(value)}}, nil
	}
	code, stdout, stderr = drover(t, nil, "--fleet", fleetFile, "--state", state, "--output", "json", "images", "scan", "web")
	var out scanOutput
	if code != exitFailure || json.Unmarshal([]byte(stdout), &out) != nil {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	rules := map[string]int{}
	for _, f := range out.Findings {
		rules[f.Rule]++
	}
	if out.OK || !out.Disk.Checked || out.Disk.Values != 1 || rules["forbidden-value"] != 2 || rules["github-token"] != 1 ||
		!strings.Contains(out.Disk.Note, "1 value(s) shorter than") || out.Tree.Files != 5 {
		t.Errorf("JSON result %+v", out)
	}
	if strings.Contains(stdout+stderr, token[4:]) || strings.Contains(stdout+stderr, value[4:]) {
		t.Fatalf("a secret leaked:\n%s%s", stdout, stderr)
	}
	if strings.Count(strings.TrimSpace(stdout), "\n{") > 0 {
		t.Errorf("more than one JSON object:\n%s", stdout)
	}

	// The temporary tree is removed.
	tmp := t.TempDir()
	if code, _, stderr := drover(t, nil, "--fleet", noFleet, "--state", state, "images", "scan", "--tmp-dir", tmp, "web"); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in --tmp-dir: %v", left)
	}
}
