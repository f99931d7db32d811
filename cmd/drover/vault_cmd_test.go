package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// homelabFleet copies examples/homelab to a temporary directory, applies the edits (old -> new, each
// must match) to its drover.hcl and returns the fleet file.
func homelabFleet(t *testing.T, edits ...string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../examples/homelab/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	file := filepath.Join(dir, "drover.hcl")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	hcl := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(hcl, edits[i]) {
			t.Fatalf("the example's drover.hcl changed: no %q to replace", edits[i])
		}
		hcl = strings.Replace(hcl, edits[i], edits[i+1], 1)
	}
	if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// Edits of the example for homelabFleet.
const (
	exampleVaultAddr = `address = "http://127.0.0.1:8200"`
	exampleWebRun    = `run     = ["systemctl enable nginx"]`
)

// webWithSecret gives the example's web role a secret path.
func webWithSecret(path string) []string {
	return []string{exampleWebRun, exampleWebRun + "\n    secrets = [\"" + path + "\"]"}
}

func TestVaultPolicy(t *testing.T) {
	code, stdout, stderr := drover(t, nil, "--fleet", "../../examples/homelab/drover.hcl", "vault", "policy")
	if code != exitOK || stdout != vault.ControllerPolicy("approle") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{`path "sys/policies/acl/drover-*"`, `path "auth/approle/role/drover-*"`, "vault auth enable -path=approle approle"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("policy lacks %s:\n%s", want, stdout)
		}
	}

	// The block's approle_mount.
	fleetFile := homelabFleet(t, exampleVaultAddr, exampleVaultAddr+"\n  approle_mount = \"drover/approle\"")
	code, stdout, stderr = drover(t, nil, "--fleet", fleetFile, "--output", "json", "vault", "policy")
	var out map[string]string
	if code != exitOK || json.Unmarshal([]byte(stdout), &out) != nil {
		t.Fatalf("JSON: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(out) != 2 || out["name"] != "drover-controller" || out["policy"] != vault.ControllerPolicy("drover/approle") ||
		!strings.Contains(out["policy"], `path "auth/drover/approle/role/drover-*"`) {
		t.Errorf("JSON %v", out)
	}

	// A role whose instances log in with the aws auth method: the policy manages its aws role too.
	awsFleet := homelabFleet(t, exampleVaultAddr, exampleVaultAddr+"\n  aws_mount = \"cloud/aws\"",
		`store "local" {}`, `store "local" {}`+"\n\ncompute \"aws\" \"cloud\" {\n  region = \"eu-west-1\"\n}",
		"compute = \"lab\"\n    count   = 1\n    health \"postgres\"", "compute = \"cloud\"\n    aws_iam_role = \"arn:aws:iam::123456789012:role/db\"\n    count   = 1\n    health \"postgres\"")
	code, stdout, stderr = drover(t, nil, "--fleet", awsFleet, "vault", "policy")
	if code != exitOK || stdout != vault.ControllerPolicy("approle")+vault.AWSControllerPolicy("cloud/aws") ||
		!strings.Contains(stdout, `path "auth/cloud/aws/role/drover-*"`) {
		t.Errorf("aws roles: exit %d\n%s%s", code, stdout, stderr)
	}

	// No vault block: nothing to print.
	noVault := homelabFleet(t, "vault {\n  "+exampleVaultAddr+"\n}\n", "", `secrets = ["kv/data/db/postgres"]`, "")
	code, stdout, stderr = drover(t, nil, "--fleet", noVault, "vault", "policy")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "has no vault block") || !strings.Contains(stderr, "(hint: ") {
		t.Errorf("no vault block: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := drover(t, nil, "--fleet", fleetFile, "vault", "policy", "extra"); code != exitUsage {
		t.Errorf("an argument: exit %d\n%s", code, stderr)
	}

	// The help teaches the operator's steps.
	code, stdout, _ = drover(t, nil, "vault", "policy", "--help")
	for _, want := range []string{"vault policy write drover-controller <(drover vault policy)", "vault token create -policy=drover-controller -period=24h",
		"vault auth enable approle", "DROVER_SCAN_VAULT_TOKEN", "VAULT_TOKEN"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("drover vault policy --help lacks %q (exit %d):\n%s", want, code, stdout)
		}
	}
	if _, stdout, _ := drover(t, nil, "--help"); !strings.Contains(stdout, "vault") {
		t.Errorf("drover --help does not list vault:\n%s", stdout)
	}
}

// TestImagesScanVaultTokens runs images scan against a real Vault: the values come from the role's
// declared path (the role was never rolled out: no drover-web policy), read with
// DROVER_SCAN_VAULT_TOKEN(_FILE) when set, else VAULT_TOKEN; a controller token, or none, only
// leaves a note; Vault down or a token that is not valid fails the scan.
func TestImagesScanVaultTokens(t *testing.T) {
	value := "tls-" + strings.Repeat("Vx9", 8)
	state := t.TempDir()
	catalogImage(t, state, map[string]string{
		"/etc/motd":                "hello\n",
		"/var/www/html/index.html": "<p>" + value + "</p>\n",
	})
	srv := vaulttest.Start(t)
	root, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken)
	if err := root.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("kv/data/web/tls", map[string]any{"data": map[string]any{"key": value, "short": "abc"}}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("drover-controller", vault.ControllerPolicy("approle")); err != nil {
		t.Fatal(err)
	}
	ctl, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"drover-controller"}})
	if err != nil {
		t.Fatal(err)
	}
	ctlToken := ctl.Auth.ClientToken
	fleetFile := homelabFleet(t, append([]string{exampleVaultAddr, `address = "` + srv.Addr + `"`}, webWithSecret("kv/data/web/tls")...)...)
	tokenFile := filepath.Join(t.TempDir(), "scan-token")
	if err := os.WriteFile(tokenFile, []byte(srv.RootToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	scan := func(t *testing.T, env map[string]string) (int, scanOutput, string) {
		t.Helper()
		code, stdout, stderr := drover(t, env, "--fleet", fleetFile, "--state", state, "--output", "json", "images", "scan", "web")
		var out scanOutput
		_ = json.Unmarshal([]byte(stdout), &out)
		for _, s := range []string{value, srv.RootToken, ctlToken} {
			if strings.Contains(stdout+stderr, s) {
				t.Fatalf("a secret leaked:\n%s%s", stdout, stderr)
			}
		}
		return code, out, stdout + stderr
	}

	t.Run("the controller's token leaves a note", func(t *testing.T) {
		code, out, all := scan(t, map[string]string{"VAULT_TOKEN": ctlToken})
		want := "VAULT_TOKEN may not read kv/data/web/tls (403): set DROVER_SCAN_VAULT_TOKEN to a token that may, to check the image for the role's secret values"
		if code != exitOK || !out.OK || out.Disk.Checked || out.Disk.Note != want {
			t.Errorf("exit %d, disk %+v, want note %q\n%s", code, out.Disk, want, all)
		}
		code, stdout, _ := drover(t, map[string]string{"VAULT_TOKEN": ctlToken}, "--fleet", fleetFile, "--state", state, "images", "scan", "web")
		if code != exitOK || !strings.Contains(stdout, "disk       not checked: "+want) {
			t.Errorf("text: exit %d\n%s", code, stdout)
		}
	})
	t.Run("no token leaves a note", func(t *testing.T) {
		code, out, all := scan(t, nil)
		if code != exitOK || out.Disk.Checked || !strings.Contains(out.Disk.Note, "no Vault token") || !strings.Contains(out.Disk.Note, "DROVER_SCAN_VAULT_TOKEN") {
			t.Errorf("exit %d, disk %+v\n%s", code, out.Disk, all)
		}
	})
	for name, env := range map[string]map[string]string{
		"DROVER_SCAN_VAULT_TOKEN":      {"VAULT_TOKEN": ctlToken, "DROVER_SCAN_VAULT_TOKEN": srv.RootToken},
		"DROVER_SCAN_VAULT_TOKEN_FILE": {"VAULT_TOKEN": ctlToken, "DROVER_SCAN_VAULT_TOKEN_FILE": tokenFile},
		"VAULT_TOKEN that may read":    {"VAULT_TOKEN": srv.RootToken},
	} {
		t.Run(name+" finds the value", func(t *testing.T) {
			code, out, all := scan(t, env)
			n := 0
			for _, f := range out.Findings {
				if f.Rule == "forbidden-value" {
					n++
				}
			}
			// In index.html of the tree, and on the raw disk.
			if code != exitFailure || out.OK || !out.Disk.Checked || out.Disk.Values != 1 || n != 2 {
				t.Errorf("exit %d, %+v\n%s", code, out, all)
			}
		})
	}
	t.Run("a scan token that may not read leaves a note naming it", func(t *testing.T) {
		code, out, all := scan(t, map[string]string{"VAULT_TOKEN": srv.RootToken, "DROVER_SCAN_VAULT_TOKEN": ctlToken})
		if code != exitOK || out.Disk.Checked || !strings.HasPrefix(out.Disk.Note, "DROVER_SCAN_VAULT_TOKEN may not read kv/data/web/tls (403)") {
			t.Errorf("exit %d, disk %+v\n%s", code, out.Disk, all)
		}
	})
	t.Run("a token that is not valid fails", func(t *testing.T) {
		code, out, all := scan(t, map[string]string{"DROVER_SCAN_VAULT_TOKEN": "hvs.not-a-token"})
		if code != exitFailure || out.OK || !strings.Contains(all, "invalid token") || !strings.Contains(all, "DROVER_SCAN_VAULT_TOKEN") {
			t.Errorf("exit %d\n%s", code, all)
		}
	})
	t.Run("Vault down fails", func(t *testing.T) {
		down := homelabFleet(t, append([]string{exampleVaultAddr, `address = "http://127.0.0.1:1"`}, webWithSecret("kv/data/web/tls")...)...)
		code, stdout, stderr := drover(t, map[string]string{"VAULT_TOKEN": ctlToken}, "--fleet", down, "--state", state, "images", "scan", "web")
		if code != exitFailure || !strings.Contains(stderr, "reading role \"web\"'s secret values from Vault") || !strings.Contains(stderr, "127.0.0.1:1") ||
			!strings.Contains(stderr, "(hint: check that Vault is up") {
			t.Errorf("exit %d\n%s%s", code, stdout, stderr)
		}
	})
}
