//go:build e2e

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// TestE2EBuildSecretValues builds the example's web role, given a Vault secret, with one of that
// secret's values planted in its index.html: with a scan token that may read the secret the build's
// secret scan fails on the file without printing the value; with only the controller's token
// (drover vault policy) the build goes on and says the values were not checked; an image already in
// the catalog needs no Vault; a build with Vault down fails, saying so.
func TestE2EBuildSecretValues(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	value := "tls-key-" + strings.Repeat("Qm4x", 8)
	srv := vaulttest.Start(t)
	root, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken)
	if err := root.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("kv/data/web/tls", map[string]any{"data": map[string]any{"cert": "not-in-the-image-" + strings.Repeat("c", 16), "key": value}}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy(vault.ControllerPolicyName, vault.ControllerPolicy("approle")); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.ControllerPolicyName}})
	if err != nil {
		t.Fatal(err)
	}
	ctlToken := tok.Auth.ClientToken

	fleetFile := homelabFleet(t, append([]string{exampleVaultAddr, `address = "` + srv.Addr + `"`}, webWithSecret("kv/data/web/tls")...)...)
	index := filepath.Join(filepath.Dir(fleetFile), "web", "index.html")
	if err := os.WriteFile(index, []byte("<!doctype html><title>drover lab</title><p>"+value+"</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		r := droverExec(t, env, append([]string{"--fleet", fleetFile, "build"}, args...)...)
		for _, s := range []string{value, srv.RootToken, ctlToken} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Fatalf("a secret is in drover's output:\n%s%s", r.stdout, r.stderr)
			}
		}
		return r
	}
	// The parent's VAULT_* must not reach drover: each run says which tokens it has.
	clean := []string{"VAULT_TOKEN=", "VAULT_TOKEN_FILE=", "DROVER_SCAN_VAULT_TOKEN=", "DROVER_SCAN_VAULT_TOKEN_FILE="}

	t.Run("a scan token finds the planted value", func(t *testing.T) {
		r := build(t, append(clean, "VAULT_TOKEN="+ctlToken, "DROVER_SCAN_VAULT_TOKEN="+srv.RootToken), "web")
		if r.code != exitFailure {
			t.Fatalf("exit %d, want %d", r.code, exitFailure)
		}
		for _, want := range []string{`web: failed: step "scan"`, "/var/www/html/index.html", "forbidden-value", "value of secret #2"} {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if strings.Contains(r.stdout, "not checked") {
			t.Error("the values were read, yet a note says they were not")
		}
	})

	t.Run("the controller's token: a note, and the build goes on", func(t *testing.T) {
		r := build(t, append(clean, "VAULT_TOKEN="+ctlToken), "--output", "json", "web")
		if r.code != exitOK {
			t.Fatalf("exit %d", r.code)
		}
		var notes []string
		image := false
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var e struct{ Event, Role, Note string }
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			switch e.Event {
			case "note":
				notes = append(notes, e.Note)
			case "image":
				image = true
			}
		}
		want := "secret values not checked: VAULT_TOKEN may not read kv/data/web/tls (403): set DROVER_SCAN_VAULT_TOKEN to a token that may, to check the image for the role's secret values"
		if len(notes) != 1 || notes[0] != want || !image {
			t.Errorf("notes %q (want [%q]), image event %v", notes, want, image)
		}
	})

	srv.Stop()
	t.Run("an image in the catalog needs no Vault", func(t *testing.T) {
		r := build(t, append(clean, "VAULT_TOKEN="+ctlToken), "web")
		if r.code != exitOK || !strings.Contains(r.stdout, "web: up to date") {
			t.Errorf("exit %d", r.code)
		}
	})
	t.Run("Vault down fails the build, saying so", func(t *testing.T) {
		r := build(t, append(clean, "VAULT_TOKEN="+ctlToken), "--force", "web")
		if r.code != exitFailure || !strings.Contains(r.stdout, "web: failed: the image's secret scan needs the role's secret values") ||
			!strings.Contains(r.stderr, "(hint: the build reads the role's secret values from Vault ("+srv.Addr) {
			t.Errorf("exit %d", r.code)
		}
		if r.elapsed.Minutes() > 1 {
			t.Errorf("took %s: the values are read before the build starts", r.elapsed)
		}
	})
}
