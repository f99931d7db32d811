//go:build e2e && lab

package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/plugins/secrets/vault"
)

// TestE2ESecrets rolls out a web role whose TLS key, certificate and basic-auth password come from
// a real Vault at boot, on the lab, with a controller token that may not read them. The instance
// serves HTTPS with them; replayed, re-wrapped and expired wrapping tokens are refused on real VMs
// (drover-boot fails, nginx never starts); the instance's token cannot read another role's
// secrets; and the secret values are nowhere in the state directory, drover's output or any
// process's argv.
func TestE2ESecrets(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done, its lab on
	// addresses of its own (127.0.162.0/24) and its own Vault.
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	ctx := context.Background()
	srv, root, controllerToken := startLabVault(t)
	pki := srv.EnablePKI(t, "pki", "web", time.Hour)
	pkiRoots := x509.NewCertPool()
	pkiRoots.AppendCertsFromPEM([]byte(pki.CAPEM))
	const pkiTTL = 60 * time.Second

	addr := "127.0.0.124" // a failover address of this test's own
	certs := newWebTLS(t, addr)
	password, dbPassword := randomPassword(t), randomPassword(t)
	mustWrite(t, root, "kv/data/web/tls", map[string]any{"data": map[string]any{"key": certs.keyPEM, "cert": certs.certPEM}})
	mustWrite(t, root, "kv/data/web/app", map[string]any{"data": map[string]any{"password": password}})
	mustWrite(t, root, "kv/data/db/postgres", map[string]any{"data": map[string]any{"password": dbPassword}})
	// What must never leave Vault except to the instance's tmpfs.
	needles := map[string]string{"web password": password, "db password": dbPassword}
	for i, b := range keyBody(certs.keyPEM) {
		needles[fmt.Sprintf("TLS key line %d", i+1)] = b
	}

	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	editFleet(t, fleetFile, `address = "http://127.0.0.1:8200"`, `address = "`+srv.Addr+`"`)
	editFleet(t, fleetFile, `address = "127.0.0.100"`, `address = "`+addr+`"`)
	labCfg := labNetwork(t, fleetFile, "127.0.162.0/24")
	editFleet(t, fleetFile, `count   = 2`, `count   = 1`)
	editFleet(t, fleetFile, `ports   = [80]`, `ports   = [80, 443]`)
	editFleet(t, fleetFile, `watch    = var.watch`, `watch    = "5s"`)
	editFleet(t, fleetFile, `cutover "ip" {
      ip   = "front"
      dns  = "home"
      name = "www"
      ttl  = 60
    }`, `cutover "ip" {
      ip = "front"
    }`)
	editFleet(t, fleetFile, `run     = ["systemctl enable nginx"]`, `run     = ["systemctl enable nginx"]
    secret "tls.key" {
      path  = "kv/data/web/tls"
      field = "key"
    }
    secret "tls.crt" {
      path  = "kv/data/web/tls"
      field = "cert"
    }
    secret "htpasswd" {
      path     = "kv/data/web/app"
      template = "web/htpasswd.tmpl"
      owner    = "root:www-data"
      mode     = "0440"
    }
    certificate "pki" {
      pki_role    = "web"
      common_name = "`+pkiWebName+`"
      ip_sans     = [instance.address]
      ttl         = "`+pkiTTL.String()+`"
      reload      = ["nginx"]
    }
    services = ["nginx"]`)
	writeFile(t, filepath.Join(fleetDir, "web/htpasswd.tmpl"), "admin:{PLAIN}{{ .password }}\n")
	writeFile(t, filepath.Join(fleetDir, "web/index.html"), "<h1>web with secrets</h1>\n")
	writeFile(t, filepath.Join(fleetDir, "web/site.conf"), `server {
    listen 80 default_server;
    root /var/www/html;
    location / { try_files $uri $uri/ =404; }
}
server {
    listen 443 ssl default_server;
    ssl_certificate     /run/drover/secrets/tls.crt;
    ssl_certificate_key /run/drover/secrets/tls.key;
    root /var/www/html;
    location / {
        auth_basic           "drover";
        auth_basic_user_file /run/drover/secrets/htpasswd;
        try_files $uri $uri/ =404;
    }
}
server {
    listen 443 ssl;
    server_name `+pkiWebName+`;
    ssl_certificate     /run/drover/secrets/pki.crt;
    ssl_certificate_key /run/drover/secrets/pki.key;
    root /var/www/html;
}
`)

	lab, err := qemu.New(labCfg, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	env := []string{"VAULT_TOKEN=" + controllerToken}
	var outputs []string // everything drover printed, grepped at the end
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
		outputs = append(outputs, r.stdout, r.stderr)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
	}

	var table []string
	row := func(check, outcome string) { table = append(table, fmt.Sprintf("%-62s %s", check, outcome)) }
	defer func() {
		t.Logf("secrets on the lab with a real Vault:\n%-62s %s\n%s", "check", "outcome", strings.Join(table, "\n"))
	}()

	var green compute.Instance
	var firstPKISerial string
	var firstPKISeen time.Time
	t.Run("a web instance fetches its TLS key and password at boot and serves with them", func(t *testing.T) {
		// The build reads the values with a token that may (the controller's may not) and looks for
		// them in the image: none may be baked in.
		env := env
		build := droverExec(t, append(env, "DROVER_SCAN_VAULT_TOKEN="+srv.RootToken), "--fleet", fleetFile, "build", "web")
		outputs = append(outputs, build.stdout, build.stderr)
		if build.code != 0 {
			t.Fatalf("drover build web: exit %d", build.code)
		}
		if strings.Contains(build.stdout+build.stderr, "not checked") {
			t.Errorf("the build did not look for the secret values")
		}
		row("drover build web, the 3 values looked for in the tree", "none found; built")
		must(t, "rollout", "start", "web")
		must(t, "rollout", "promote", "web")
		live := liveInstances(t, lab, compute.Selector{"role": "web"})
		if len(live) != 1 {
			t.Fatalf("%d live web instances, want 1", len(live))
		}
		green = live[0]
		code, body, err := httpsGet(addr+":443", "www.lab.example", certs.pool, "admin", password)
		if err != nil || code != 200 || !strings.Contains(body, "web with secrets") {
			t.Fatalf("https://%s/ with the password: %d %q %v", addr, code, body, err)
		}
		if code, _, err := httpsGet(addr+":443", "www.lab.example", certs.pool, "admin", "wrong"); err != nil || code != 401 {
			t.Errorf("https://%s/ with a wrong password: %d %v, want 401", addr, code, err)
		}
		if code, _, err := httpsGet(addr+":443", "www.lab.example", certs.pool, "", ""); err != nil || code != 401 {
			t.Errorf("https://%s/ without a password: %d %v, want 401", addr, code, err)
		}
		console, _ := os.ReadFile(green.Console)
		if !strings.Contains(string(console), "drover-boot: ") || !strings.Contains(string(console), "tls.key, tls.crt, htpasswd") {
			t.Errorf("the console does not show drover-boot writing the secrets; it ends:\n%s", tail(string(console), 20))
		}
		row("TLS (key from Vault, verified against its cert) and basic auth", "served: 200 with the password, 401 without or wrong")
		chain, err := servedChain(addr+":443", pkiWebName, pkiRoots)
		if err != nil {
			t.Fatalf("%s on 443 against the PKI's CA: %v", pkiWebName, err)
		}
		checkPKIChain(t, chain, pkiTTL)
		firstPKISerial, firstPKISeen = chain[0].SerialNumber.String(), time.Now()
		row("certificate from Vault PKI (issued at boot with the instance's token)", "served on 443 for "+pkiWebName+": chain verified against the PKI's CA; SANs "+pkiWebName+", 10.0.2.15")
		// The lab VM's SecretID and token work only from where the VM reaches Vault (its SecretID is
		// spent: the role says what every one of them is bound to).
		role, err := root.Logical().Read("auth/approle/role/drover-web")
		if err != nil || role == nil {
			t.Fatalf("reading the drover-web AppRole: %v", err)
		}
		if got := fmt.Sprint(role.Data["secret_id_bound_cidrs"], role.Data["token_bound_cidrs"]); got != "[127.0.0.1/32] [127.0.0.1]" { // Vault shows a host prefix as the address
			t.Errorf("drover-web's SecretIDs and tokens are bound to %s, want 127.0.0.1/32 for both", got)
		}
		row("drover-web's secret_id_bound_cidrs and token_bound_cidrs", "127.0.0.1/32 (the lab VM's way to Vault); green logged in from there")
	})
	if green.ID == "" {
		t.FailNow()
	}

	t.Run("the controller's token cannot read any role's secrets", func(t *testing.T) {
		c := vaultAs(t, srv.Addr, controllerToken)
		for _, p := range []string{"kv/data/web/tls", "kv/data/web/app", "kv/data/db/postgres"} {
			if _, err := c.Logical().Read(p); statusOf(err) != 403 {
				t.Errorf("the controller's token reading %s: %v, want 403", p, err)
			}
		}
		row("controller token reads kv/data/web/tls, web/app, db/postgres", "403 for each")
	})

	t.Run("the instance's token cannot read another role's secrets", func(t *testing.T) {
		ud := greenUserData(t, green)
		sec, err := root.Logical().Write("auth/approle/role/drover-web/secret-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		login, err := vaultAs(t, srv.Addr, "").Logical().Write("auth/approle/login",
			map[string]any{"role_id": ud.Vault.RoleID, "secret_id": sec.Data["secret_id"]})
		if err != nil {
			t.Fatal(err)
		}
		c := vaultAs(t, srv.Addr, login.Auth.ClientToken)
		if _, err := c.Logical().Read("kv/data/web/app"); err != nil {
			t.Errorf("web's token reading its own secret: %v", err)
		}
		if _, err := c.Logical().Read("kv/data/db/postgres"); statusOf(err) != 403 {
			t.Errorf("web's token reading db's secret: %v, want 403", err)
		}
		row("web's AppRole token reads kv/data/db/postgres", "403 (its own: 200)")
		for _, p := range []string{"pki/issue/other", "pki/sign/web", "pki/roles/web"} {
			if _, err := c.Logical().Write(p, map[string]any{"common_name": "x.lab.example"}); statusOf(err) != 403 {
				t.Errorf("web's token writing %s: %v, want 403", p, err)
			}
		}
		if _, err := c.Logical().Write("pki/issue/web", map[string]any{"common_name": pkiWebName, "ttl": "30s"}); err != nil {
			t.Errorf("web's token issuing at pki/issue/web: %v", err)
		}
		pol, err := root.Sys().GetPolicy("drover-web")
		if err != nil || !strings.Contains(pol, "path \"pki/issue/web\" {\n  capabilities = [\"update\"]\n}") || strings.Count(pol, "pki/") != 1 {
			t.Errorf("drover-web's policy: %v\n%s", err, pol)
		}
		row("web's token: pki/issue/web (its policy's one PKI path); pki/issue/other, sign, roles", "issues; 403 for each")
	})

	t.Run("replayed, re-wrapped and expired wrapping tokens are refused on real VMs", func(t *testing.T) {
		broker, err := vault.New(&vault.Config{Address: srv.Addr, AuthMount: "approle", WrapTTL: "5m", Token: secrets.Secret(srv.RootToken)})
		if err != nil {
			t.Fatal(err)
		}
		replayed := greenUserData(t, green)

		// Unwrapped by someone on the way, and wrapped again to look fresh.
		rewrapped := greenUserData(t, green)
		w, err := broker.IssueSecretID(ctx, "web", map[string]string{"instance": "rewrapped"}, nil, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		inner, err := root.Logical().Unwrap(w.Token.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		wrapper := vaultAs(t, srv.Addr, srv.RootToken)
		// Long enough to outlive the subtest (over 5 minutes under CI's load): the check after the
		// boots below is that drover-boot never unwrapped it, not that its TTL has not run out.
		wrapper.SetWrappingLookupFunc(func(string, string) string { return "30m" })
		again, err := wrapper.Logical().Write("sys/wrapping/wrap", map[string]any{"secret_id": inner.Data["secret_id"]})
		if err != nil || again.WrapInfo == nil {
			t.Fatalf("re-wrapping: %v", err)
		}
		rewrappedToken := again.WrapInfo.Token
		rewrapped.Vault.WrappedSecretID = secrets.Secret(rewrappedToken)

		expired := greenUserData(t, green)
		w, err = broker.IssueSecretID(ctx, "web", map[string]string{"instance": "expired"}, nil, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		expired.Vault.WrappedSecretID = w.Token
		time.Sleep(3 * time.Second)

		cases := []struct {
			name, reason string
			ud           bootdata.UserData
		}{
			{"replayed user-data (the green instance's, already unwrapped)", "vault refused the wrapping token at lookup", replayed},
			{"a re-wrapped token (creation_path sys/wrapping/wrap)", `refusing the wrapping token: it wraps a response of "sys/wrapping/wrap"`, rewrapped},
			{"an expired wrapping token (2 s TTL, booted after 3 s)", "vault refused the wrapping token at lookup", expired},
		}
		img := instanceImage(t, green)
		insts := make([]compute.Instance, len(cases))
		for i, c := range cases {
			raw, err := bootdata.Marshal(c.ud)
			if err != nil {
				t.Fatal(err)
			}
			insts[i], err = lab.Launch(ctx, compute.Spec{Token: fmt.Sprintf("secrets-e2e-%d", i), Name: fmt.Sprintf("web-refused-%d", i),
				Image: img, Labels: map[string]string{"test": "secrets"}, Ports: []int{80}, UserData: raw})
			if err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		outcome := make([]string, len(cases))
		for i, c := range cases {
			wg.Go(func() {
				inst := insts[i]
				console := waitConsole(t, inst, "drover-boot: failed: ", 6*time.Minute)
				line := consoleLine(console, "drover-boot: failed: ")
				if !strings.Contains(line, c.reason) {
					t.Errorf("%s: drover-boot says %q, want %q", c.name, line, c.reason)
				}
				// nginx waits for drover-boot (Requires=): it must never start. The console is no
				// proof: systemd prints "Dependency failed for" only while no getty holds the
				// console, and under load the serial getty starts before drover-boot fails. Port 80
				// is: systemd settles nginx's job the moment drover-boot exits, so it is watched
				// for half a minute after the failure.
				for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(3 * time.Second) {
					if got := getOnce(inst.Endpoint(80).String()); !strings.HasPrefix(got, "error") {
						t.Errorf("%s: port 80 answers %q: nginx started without its secrets", c.name, got)
						break
					}
				}
				outcome[i] = "refused: " + strings.TrimPrefix(line, "drover-boot: failed: ")
				if len(outcome[i]) > 110 {
					outcome[i] = outcome[i][:110] + "..."
				}
			})
		}
		wg.Wait()
		// The re-wrapped token was looked up, never unwrapped: it is still valid.
		if _, err := root.Logical().Write("sys/wrapping/lookup", map[string]any{"token": rewrappedToken}); err != nil {
			t.Errorf("the re-wrapped token is gone, so drover-boot unwrapped it: %v", err)
		}
		for i, c := range cases {
			row(c.name, outcome[i]+"; nginx not started")
		}
		row("re-wrapped token after the refusal", "still valid: looked up, never unwrapped")
		for _, inst := range insts {
			if err := lab.Terminate(ctx, inst.ID); err != nil {
				t.Error(err)
			}
		}
	})

	// The refused VMs above took minutes: the PKI certificate (60 s) has been renewed on green by now,
	// or is about to be.
	t.Run("the PKI certificate is renewed and served without a new instance", func(t *testing.T) {
		deadline := firstPKISeen.Add(3 * pkiTTL)
		var chain []*x509.Certificate
		for {
			var err error
			chain, err = servedChain(addr+":443", pkiWebName, pkiRoots)
			if err == nil && chain[0].SerialNumber.String() != firstPKISerial {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the served certificate still has serial %s %s after it was first seen (%v)", firstPKISerial, time.Since(firstPKISeen).Round(time.Second), err)
			}
			time.Sleep(2 * time.Second)
		}
		checkPKIChain(t, chain, pkiTTL)
		live := liveInstances(t, lab, compute.Selector{"role": "web"})
		if len(live) != 1 || live[0].ID != green.ID {
			t.Errorf("live web instances %v, want green %s alone", live, green.ID)
		}
		console, _ := os.ReadFile(green.Console)
		line := consoleLine(string(console), "drover-boot: certificate pki renewed")
		if !strings.Contains(line, "reloaded nginx") {
			t.Errorf("green's console says no renewal with a reload of nginx; it ends:\n%s", tail(string(console), 20))
		}
		row("the PKI certificate (ttl 60 s) later, same instance", "new serial served, chain verified; console: "+strings.TrimPrefix(line, "drover-boot: "))
	})

	t.Run("the secret values are nowhere in state, logs, manifests, user-data or argv", func(t *testing.T) {
		for _, l := range grepTree(t, state, needles) {
			t.Errorf("%s found in %s", l.what, l.where)
		}
		for i, out := range outputs {
			for what, n := range needles {
				if strings.Contains(out, n) {
					t.Errorf("%s found in drover's output %d", what, i)
				}
			}
		}
		procs, leaks := grepArgv(needles)
		for _, l := range leaks {
			t.Errorf("%s found in the argv of %s", l.what, l.where)
		}
		files := 0
		_ = filepath.Walk(state, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				files++
			}
			return nil
		})
		row(fmt.Sprintf("grep %d values: state dir (%d files: records, user-data, consoles, overlays, catalog, manifests)", len(needles), files), "0 found")
		row(fmt.Sprintf("grep: drover's stdout and stderr (%d outputs)", len(outputs)), "0 found")
		row(fmt.Sprintf("grep: argv of every process (%d)", procs), "0 found")
	})
}

// greenUserData is the user-data the controller gave an instance, as the lab keeps it.
func greenUserData(t *testing.T, inst compute.Instance) bootdata.UserData {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(inst.Console), "user-data"))
	if err != nil {
		t.Fatal(err)
	}
	ud, err := bootdata.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ud
}

func consoleLine(console, prefix string) string {
	for _, l := range strings.Split(console, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
