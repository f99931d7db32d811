//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/images"
)

// plantedSecret is one made-up secret the fleet in testdata/planted puts in its image: where, the
// rule that must find it, and its value (which no output may show whole).
type plantedSecret struct{ path, rule, value string }

// plantedSecrets are every rule of images/scan, one finding each: 20 findings, which is what a
// failed build lists in full (images/rootfs lists at most 20). Keep the values in step with the files
// of testdata/planted (the test checks that each value is in the fleet).
var plantedSecrets = []plantedSecret{
	{"/etc/app/app.conf", "config-password", "DroverPlantedFakeAppPassword2468"},
	{"/etc/app/aws.env", "aws-access-key", "AKIADROVERPLANTED0X1"},
	{"/etc/app/aws.env", "aws-secret-key", "droverPlantedFakeAwsSecretKey/2468+97531"},
	{"/etc/app/mail.env", "sendgrid-key", "SG.DroverPlantedFakeSg246.DroverPlantedFakeSendGridApiKey246813579abc"},
	{"/etc/app/remote.conf", "url-credentials", "DroverPlantedFakeUrlPassword2468"},
	{"/etc/app/vault.env", "vault-token", "hvs.DroverPlantedFakeVaultToken2468ab"},
	{"/etc/letsencrypt/cloudflare.ini", "cloudflare-token", "DroverPlantedFakeCloudflareTok2468_135"},
	{"/etc/shadow", "shadow-hash", "$6$droverplanted$DroverPlantedFakeSha512CryptHashNotAHashOfAnything2468135797531AbCdEfGhIjKlMnOpQrStUv"},
	{"/etc/ssl/private/server.key", "private-key", "MIIEowIBAAKCAQEAdroverPlantedFakeRsaKeyForTheSecretScanE2eTestNotReal"},
	{"/etc/wpa_supplicant/wpa_supplicant.conf", "wifi-psk", "DroverPlantedFakeWifiPsk2468"},
	{"/opt/app/deploy.sh", "github-token", "ghp_DroverPlantedFakeGitHubToken24680135"},
	{"/opt/app/notify.py", "slack-token", "xoxb-246813579024-2468135790246-DroverPlantedFakeSlackBot"},
	{"/opt/shop/settings.py", "stripe-key", "sk_live_DroverPlantedFakeStripe2468135"},
	{"/root/.config/glab-cli/config.yml", "gitlab-token", "glpat-DroverPlantedFakeGitLab2468"},
	{"/root/.netrc", "netrc", "DroverPlantedFakeNetrcPassword2468"},
	{"/root/.npmrc", "npm-token", "npm_DroverPlantedFakeNpmToken24681357913"},
	{"/root/.pgpass", "pgpass", "DroverPlantedFakePgPassword2468"},
	{"/root/.pypirc", "pypi-token", "pypi-AgEIcHlwaS5vcmcCJDroverPlantedFakePyPIToken2468AbCdEfGhIjKlMnOpQrStUvWz13579"},
	{"/usr/local/lib/app/settings.py", "generic-secret", "q8Zr3Lx0Vt7Nw2Kp5Jy9Hb4Mc6Gd1Fs8Qa3We7Rt"},
	{"/var/www/html/maps.js", "google-api-key", "AIzaSyDroverPlantedFakeGoogleKey2468135"},
}

// TestE2EBuildPlantedSecrets builds a role that plants a made-up secret of every kind the scan knows
// and checks that the build fails at the scan step naming each file and rule, with redacted excerpts,
// in text and in JSON, and that nothing reaches the catalog. Then it builds the example's clean web
// role and checks that drover images scan finds nothing in it.
func TestE2EBuildPlantedSecrets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	fleetDir := t.TempDir()
	copyDir(t, "testdata/planted", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")

	var fleetText strings.Builder
	if err := filepath.Walk(fleetDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		fleetText.Write(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, s := range plantedSecrets {
		kinds[s.rule] = true
		if !strings.Contains(fleetText.String(), s.value) {
			t.Fatalf("the value planted for %s (%s) is not in testdata/planted: keep the table in step", s.path, s.rule)
		}
	}
	if len(kinds) < 15 {
		t.Fatalf("only %d kinds of secret planted", len(kinds))
	}

	// assertRedacted checks that no planted value shows in an output beyond its first 4 characters:
	// not whole, and no 12 characters of it after those 4 (a shorter window would match the words
	// some made-up values share with the names in the excerpts, such as "Cloudflare").
	assertRedacted := func(t *testing.T, what, out string) {
		t.Helper()
		for _, s := range plantedSecrets {
			if strings.Contains(out, s.value) {
				t.Errorf("%s holds the whole %s value planted in %s", what, s.rule, s.path)
				continue
			}
			for i := 4; i+12 <= len(s.value); i++ {
				if strings.Contains(out, s.value[i:i+12]) {
					t.Errorf("%s holds part of the %s value planted in %s (%q)", what, s.rule, s.path, s.value[i:i+12])
					break
				}
			}
		}
	}
	assertNoImage := func(t *testing.T) {
		t.Helper()
		list, err := images.OpenCatalog(state).List()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list {
			if m.Role == "planted" {
				t.Errorf("the catalog holds an image of the planted role: %s", m.Identity)
			}
		}
		entries, _ := os.ReadDir(filepath.Join(state, "images"))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("staging directory left behind: %s", e.Name())
			}
		}
		if m := mountsUnder(t, fleetDir); len(m) > 0 {
			t.Errorf("mounts left behind: %v", m)
		}
	}

	// Text output: one line per finding, "PATH:LINE: RULE: EXCERPT".
	r := droverExec(t, nil, "--fleet", fleetFile, "build", "planted")
	textSeconds := r.elapsed.Seconds()
	if r.code != exitFailure {
		t.Fatalf("the build exited %d, want %d", r.code, exitFailure)
	}
	out := r.stdout + r.stderr
	found := make([]bool, len(plantedSecrets))
	for _, line := range strings.Split(out, "\n") {
		for i, s := range plantedSecrets {
			if strings.Contains(line, s.path+":") && strings.Contains(line, ": "+s.rule+": ") && strings.Contains(line, "…[REDACTED]") {
				found[i] = true
			}
		}
	}
	for i, s := range plantedSecrets {
		if !found[i] {
			t.Errorf("the output does not name %s with %s on one line", s.path, s.rule)
		}
	}
	want := fmt.Sprintf("planted: failed: step \"scan\": the secret scan found %d secret(s) in the image's tree:", len(plantedSecrets))
	if !strings.Contains(r.stdout, want) {
		t.Errorf("stdout lacks %q", want)
	}
	if strings.Contains(out, "more (the build log lists them all)") {
		t.Error("the failure does not list every finding")
	}
	if !strings.Contains(r.stderr, "1 of 1 role(s) failed (planted): step \"scan\"") || !strings.Contains(r.stderr, "(hint: ") {
		t.Errorf("stderr does not say the planted role failed at the scan step:\n%s", r.stderr)
	}
	assertRedacted(t, "the text output", out)
	assertNoImage(t)

	// JSON output: one event a line, in which the scan step and the role fail with the findings
	// listed, then the command's failure object.
	j := droverExec(t, nil, "--fleet", fleetFile, "--output", "json", "build", "planted")
	if j.code != exitFailure {
		t.Errorf("the JSON build exited %d, want %d", j.code, exitFailure)
	}
	var scanFailed, roleFailed bool
	var last map[string]any
	dec := json.NewDecoder(strings.NewReader(j.stdout))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("the JSON build's output is not a stream of JSON values: %v", err)
		}
		last = nil
		if err := json.Unmarshal(raw, &last); err != nil {
			t.Fatalf("not a JSON object: %s", raw)
		}
		var e Event
		if err := json.Unmarshal(raw, &e); err != nil || e.Event == "" {
			continue // the failure object
		}
		if e.Event == "step" && e.Role == "planted" && e.Step == "scan" && e.State == "failed" {
			scanFailed = true
		}
		if e.Event == "failed" && e.Role == "planted" {
			roleFailed = true
			for _, s := range plantedSecrets {
				if !strings.Contains(e.Error, s.path+":") || !strings.Contains(e.Error, ": "+s.rule+": ") {
					t.Errorf("the JSON failure does not name %s (%s)", s.path, s.rule)
				}
			}
		}
	}
	if !scanFailed || !roleFailed {
		t.Errorf("JSON events: scan step failed %v, role failed %v", scanFailed, roleFailed)
	}
	if errText, _ := last["error"].(string); last["ok"] != false || last["exit_code"] != float64(exitFailure) ||
		!strings.Contains(errText, "(planted): step \"scan\": the secret scan found") {
		t.Errorf("the JSON output does not end with the failure: %v", last)
	}
	assertRedacted(t, "the JSON output", j.stdout+j.stderr)
	assertNoImage(t)

	var table strings.Builder
	fmt.Fprintf(&table, "%-42s %-17s %s\n", "FILE", "RULE", "FOUND")
	for i, s := range plantedSecrets {
		fmt.Fprintf(&table, "%-42s %-17s %v\n", s.path, s.rule, found[i])
	}
	t.Logf("%d planted secrets of %d kinds (build failed in %.0fs, JSON build in %.0fs):\n%s",
		len(plantedSecrets), len(kinds), textSeconds, j.elapsed.Seconds(), table.String())
}
