package scan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// Every secret in these tests is made at run time, by concatenation or from crypto/rand, so that the
// repository holds nothing a scanner (this one included) would take for a real secret.

const base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// rnd is n random base62 characters with at least one digit, one upper and one lower case letter.
// rnd returns a random token with all three character classes that does not read as words, so
// every rule must find it (see TestLooksLikeWordsAndEntropy for how rare the others are).
func rnd(n int) string {
	for {
		if s := rawRnd(n); n < 8 || countClasses(s) == 3 && !looksLikeWords(s) {
			return s
		}
	}
}

// rndTok is rnd(n) that fakeToken does not take for a placeholder (it holds none of
// fakeTokenWords), for the token rules to find.
func rndTok(n int) string {
	for {
		if s := rnd(n); !fakeToken(s) {
			return s
		}
	}
}

func rawRnd(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return string(b)
}

// tree writes files (image path -> content) under a new temporary root.
func tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		write(t, root, p, content)
	}
	return root
}

func write(t testing.TB, root, p, content string) {
	t.Helper()
	abs := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// keys makes real keys of every PEM flavour and a self-signed certificate, at run time.
type keys struct {
	rsaPKCS1, ecSEC1, pkcs8, openssh, encrypted string // private keys, PEM
	public, cert                                string // not secrets
}

func makeKeys(t testing.TB) keys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(ek)
	p8, _ := x509.MarshalPKCS8PrivateKey(ek)
	pub, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ek.PublicKey, ek)
	if err != nil {
		t.Fatal(err)
	}
	openssh := make([]byte, 300)
	_, _ = rand.Read(openssh)
	return keys{
		rsaPKCS1:  pemBlock("RSA "+"PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)),
		ecSEC1:    pemBlock("EC "+"PRIVATE KEY", sec1),
		pkcs8:     pemBlock("PRIVATE"+" KEY", p8),
		openssh:   pemBlock("OPENSSH "+"PRIVATE KEY", append([]byte("openssh-key-v1\x00"), openssh...)),
		encrypted: pemBlock("ENCRYPTED "+"PRIVATE KEY", openssh),
		public:    pemBlock("PUBLIC KEY", pub),
		cert:      pemBlock("CERTIFICATE", der),
	}
}

type want struct{ path, rule string }

// fixture is a tree with one file per rule that must be found, near misses that must not, and every
// secret it holds, to check that none leaks.
type fixture struct {
	root    string
	want    []want
	secrets []string
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	k := makeKeys(t)
	akid := "AKIA" + "IOSFODNN7EXAMPLE"
	awsSecret := rnd(20) + "/" + rnd(19)
	vaultTok := "hv" + "s." + rnd(90)
	vaultBatch := "hv" + "b." + rnd(120)
	legacy := "s." + rnd(24)
	ghp := "gh" + "p_" + rnd(36)
	ghpat := "github" + "_pat_" + rnd(22) + "_" + rnd(59)
	slack := "xo" + "xb-" + "123456789012-1234567890123-" + rnd(24)
	hook := "T" + rnd(8) + "/B" + rnd(8) + "/" + rnd(24)
	cf := rnd(40)
	cfINI := rnd(40)
	confPW := "hunter2-horse-staple"
	yamlPW := "S3cr3t!pw"
	envPW := "Tr0ub4dor&3"
	phpPW := "wp-" + rnd(12)
	jsonPW := "json-" + rnd(10)
	pgpw := "pg-" + rnd(12)
	netrcPW := "netrc-" + rnd(12)
	psk := "wifi-" + rnd(12)
	shadow := "$y$j9T$" + rnd(22) + "$" + rnd(43)
	urlPW := "url-" + rnd(12)
	generic := rnd(40)
	glpat := "gl" + "pat-" + rndTok(20)
	glrt := "gl" + "rt-" + rndTok(20)
	npmTok := "np" + "m_" + rndTok(36)
	npmUUID := "e31060a7-21fc-e277-6240-" + strings.ToLower(rnd(12))
	pypi := "py" + "pi-AgEIcHlwaS5vcmc" + rndTok(60)
	gkey := "AI" + "za" + rndTok(35)
	stripe := "sk" + "_live_" + rndTok(24)
	sendgrid := "S" + "G." + rndTok(22) + "." + rndTok(43)

	files := map[string]string{
		// must be found
		"/root/.ssh/id_rsa":                       k.rsaPKCS1,
		"/home/ann/.ssh/id_ed25519":               k.openssh,
		"/etc/app/tls/ec.pem":                     k.ecSEC1,
		"/etc/app/tls/server.key":                 k.pkcs8,
		"/srv/app/enc.key":                        k.encrypted,
		"/opt/app/.aws/credentials":               "[default]\naws_access_key_id = " + akid + "\naws_secret_access_key = " + awsSecret + "\n",
		"/etc/app/vault.env":                      "VAULT_ADDR=https://vault:8200\nVAULT_TOKEN=" + vaultTok + "\n",
		"/usr/local/lib/app/batch.txt":            "token " + vaultBatch + "\n",
		"/srv/app/config.yml":                     "vault:\n  token: " + legacy + "\n",
		"/var/www/site/deploy.sh":                 "#!/bin/sh\ngit clone https://x-access-token@github.com/o/r\nexport GH=" + ghp + "\n",
		"/usr/local/bin/release":                  "curl -H 'Authorization: Bearer " + ghpat + "'\n",
		"/opt/bot/bot.py":                         "client = Slack(\"" + slack + "\")\n",
		"/opt/bot/hook.txt":                       "https://hooks.slack" + ".com/services/" + hook + "\n",
		"/etc/default/certbot":                    "CLOUDFLARE_API_TOKEN=" + cf + "\n",
		"/etc/letsencrypt/cloudflare.ini":         "dns_cloudflare_api_token = " + cfINI + "\n",
		"/etc/app/app.conf":                       "[db]\nhost = db\ndb_password = " + confPW + "\n",
		"/etc/app/app.yml":                        "db:\n  user: app\n  password: \"" + yamlPW + "\"\n",
		"/srv/app/.env":                           "DB_PASS=" + envPW + "\n",
		"/var/www/html/wp-config.php":             "<?php\ndefine( 'DB_PASSWORD', '" + phpPW + "' );\n",
		"/opt/app/config.json":                    "{\"db\": {\"password\": \"" + jsonPW + "\", \"port\": 5432}}\n",
		"/root/.pgpass":                           "# host:port:db:user:password\ndb.example:5432:*:app:" + pgpw + "\n",
		"/home/ann/.netrc":                        "machine example.com login ann password " + netrcPW + "\n",
		"/etc/wpa_supplicant/wpa_supplicant.conf": "network={\n\tssid=\"home\"\n\tpsk=\"" + psk + "\"\n}\n",
		"/etc/shadow":                             "root:" + shadow + ":19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nnobody:!:19000::::::\n",
		"/etc/app/remote.conf":                    "url = https://deploy:" + urlPW + "@git.example.com/repo.git\n",
		"/usr/lib/app/settings.py":                "DEBUG = False\nSECRET_KEY = '" + generic + "'\n",
		"/home/ann/.config/glab-cli/config.yml":   "hosts:\n  gitlab.com:\n    token: " + glpat + "\n",
		"/opt/ci/runner.toml":                     "[[runners]]\n  url = \"https://gitlab.example\"\n  token = \"" + glrt + "\"\n",
		"/home/ann/.npmrc":                        "//registry.npmjs.org/:_authToken=" + npmTok + "\n",
		"/srv/web/.npmrc":                         "registry=https://npm.example.com/\n//npm.example.com/:_authToken=\"" + npmUUID + "\"\nalways-auth=true\n",
		"/root/.pypirc":                           "[pypi]\nusername = __token__\npassword = " + pypi + "\n",
		"/var/www/site/maps.js":                   "const key = \"" + gkey + "\";\n",
		"/opt/shop/settings.py":                   "STRIPE_SECRET_KEY = '" + stripe + "'\n",
		"/etc/app/mail.env":                       "SENDGRID_API_KEY=" + sendgrid + "\n",

		// must not be found
		"/etc/ssl/certs/test.pem":                        k.cert,
		"/usr/share/ca-certificates/test/test.crt":       k.cert,
		"/etc/app/tls/pub.pem":                           k.public,
		"/etc/ssh/ssh_host_ed25519_key.pub":              "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rnd(43) + " root@build\n",
		"/root/.ssh/authorized_keys":                     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rnd(43) + " ann@laptop\n",
		"/usr/lib/python3/dist-packages/pemtool.py":      "HEADER = \"-----BEGIN " + "PRIVATE KEY-----\"\nFOOTER = \"-----END " + "PRIVATE KEY-----\"\n",
		"/usr/share/doc/app/README":                      "Set password = hunter2real in app.conf.\n",
		"/srv/app/notes.txt":                             "see s." + rnd(24) + " in the docs; AKIA-style IDs look like AKIA" + "EXAMPLE\n",
		"/usr/lib/app/consts.py":                         "API_KEY = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaa'\nAPI_KEY2 = 'your-api-key-goes-here-000'\nPUBLIC_KEY = '" + rnd(44) + "'\ncache_key = 'some_identifier_name_1234'\nKEY_TYPE = PKCS12PrivateKeyTypes\nSIGNING_GPG_KEY = 'B42F6819007F00F88E364FD4036A9C25BF357DD4'\n",
		"/etc/app/placeholders.conf":                     "password =\npassword = ${DB_PASSWORD}\nsecret: {{ vault_secret }}\n#password = hunter2real\npassword_encryption = scram-sha-256\npasswd = changeme\nssl_passphrase_command = '/usr/bin/x'\npassword = <password>\nsecret = $insta::secret # pass:insta\n",
		"/etc/postgresql/15/main/postgresql.conf":        "#password_encryption = scram-sha-256\nssl = on\nssl_key_file = '/etc/ssl/private/ssl-cert-snakeoil.key'\n",
		"/etc/nginx/sites-available/default":             "server { listen 80; root /var/www/html; }\n",
		"/usr/lib/app/nopass.yml":                        "password: not-in-a-config-root\n",
		"/etc/network/interfaces.d/eth0":                 "iface eth0 inet dhcp\n",
		"/etc/NetworkManager/system-connections/x.nmcon": "[wifi-security]\npsk-flags=1\n",
		// token rules: placeholders, test-mode keys and values a character short
		"/usr/share/doc/tokens/README": "export GITLAB_TOKEN=glpat-xxxxxxxxxxxxxxxxxxxx\n" + "gl" + "pat-" + rndTok(19) + " is too short\n" +
			"np" + "m_" + rndTok(35) + " too; " + "np" + "m_YOUR_TOKEN_HERE_0000000000000000000000\n" +
			"py" + "pi-AgEIcHlwaS5vcmc" + rndTok(40) + " and py" + "pi-" + rndTok(80) + " are not PyPI tokens\n" +
			"AI" + "za" + rndTok(34) + " AI" + "zaSy" + strings.Repeat("X", 33) + " AI" + "zaSyExampleKeyExampleKeyExampleKey12\n" +
			"sk" + "_test_" + rndTok(24) + " rk" + "_test_" + rndTok(24) + " pk" + "_live_" + rndTok(24) + " sk" + "_live_" + rndTok(23) + "\n" +
			"S" + "G." + rndTok(22) + "." + rndTok(42) + "\n",
		"/home/ann/project/.npmrc": "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n# _auth=" + rnd(24) + "\n; _password=" + rnd(16) + "\n_authToken=\n",
	}
	root := tree(t, files)
	// A binary with a token: the rules skip it.
	write(t, root, "/usr/bin/tool", "\x7fELF\x00\x00"+ghp+"\n")
	// /proc is never entered.
	write(t, root, "/proc/1/environ", "GITHUB_TOKEN="+ghp+"\n")
	// A symbolic link out of the tree is not followed.
	outside := filepath.Join(t.TempDir(), "outside.env")
	if err := os.WriteFile(outside, []byte("VAULT_TOKEN="+vaultTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc", "outside.env")); err != nil {
		t.Fatal(err)
	}

	return fixture{root: root, want: []want{
		{"/etc/app/app.conf", "config-password"},
		{"/etc/app/app.yml", "config-password"},
		{"/etc/app/mail.env", "sendgrid-key"},
		{"/etc/app/remote.conf", "url-credentials"},
		{"/etc/app/tls/ec.pem", "private-key"},
		{"/etc/app/tls/server.key", "private-key"},
		{"/etc/app/vault.env", "vault-token"},
		{"/etc/default/certbot", "cloudflare-token"},
		{"/etc/letsencrypt/cloudflare.ini", "cloudflare-token"},
		{"/etc/shadow", "shadow-hash"},
		{"/etc/wpa_supplicant/wpa_supplicant.conf", "wifi-psk"},
		{"/home/ann/.config/glab-cli/config.yml", "gitlab-token"},
		{"/home/ann/.netrc", "netrc"},
		{"/home/ann/.npmrc", "npm-token"},
		{"/home/ann/.ssh/id_ed25519", "private-key"},
		{"/opt/app/.aws/credentials", "aws-access-key"},
		{"/opt/app/.aws/credentials", "aws-secret-key"},
		{"/opt/app/config.json", "config-password"},
		{"/opt/bot/bot.py", "slack-token"},
		{"/opt/bot/hook.txt", "slack-token"},
		{"/opt/ci/runner.toml", "gitlab-token"},
		{"/opt/shop/settings.py", "stripe-key"},
		{"/root/.pgpass", "pgpass"},
		{"/root/.pypirc", "pypi-token"},
		{"/root/.ssh/id_rsa", "private-key"},
		{"/srv/app/.env", "config-password"},
		{"/srv/app/config.yml", "vault-token"},
		{"/srv/app/enc.key", "private-key"},
		{"/srv/web/.npmrc", "npm-token"},
		{"/usr/lib/app/settings.py", "generic-secret"},
		{"/usr/local/bin/release", "github-token"},
		{"/usr/local/lib/app/batch.txt", "vault-token"},
		{"/var/www/html/wp-config.php", "config-password"},
		{"/var/www/site/deploy.sh", "github-token"},
		{"/var/www/site/maps.js", "google-api-key"},
	}, secrets: []string{akid, awsSecret, vaultTok, vaultBatch, legacy, ghp, ghpat, slack, hook, cf, cfINI, confPW, yamlPW, envPW,
		phpPW, jsonPW, pgpw, netrcPW, psk, shadow, urlPW, generic, glpat, glrt, npmTok, npmUUID, pypi, gkey, stripe, sendgrid}}
}

func got(r *Report) []want {
	var out []want
	for _, f := range r.Findings {
		out = append(out, want{f.Path, f.Rule})
	}
	return out
}

func TestRules(t *testing.T) {
	fx := newFixture(t)
	r, err := Scan(context.Background(), fx.root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := got(r)
	if fmt.Sprint(g) != fmt.Sprint(fx.want) {
		t.Errorf("findings:\n got %v\nwant %v", g, fx.want)
		for _, f := range r.Findings {
			t.Log(f)
		}
	}
	for _, f := range r.Findings {
		if f.Line < 1 {
			t.Errorf("%s: no line", f)
		}
	}
	if r.FilesScanned < 40 || r.BytesScanned == 0 || r.FilesSkipped < 1 || r.Duration <= 0 {
		t.Errorf("report counts: %+v", r)
	}
	assertNoLeak(t, r, fx.secrets)
}

// assertNoLeak checks that no secret shows whole in anything the report prints or encodes.
func assertNoLeak(t *testing.T, r *Report, secrets []string) {
	t.Helper()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{r.String(), string(js), fmt.Sprintf("%v %+v", r, r.Findings)}
	for _, f := range r.Findings {
		outputs = append(outputs, f.Excerpt, f.String())
		if !strings.HasSuffix(f.Excerpt, "…[REDACTED]") && f.Rule != RuleForbidden {
			t.Errorf("excerpt not redacted: %s", f)
		}
	}
	for _, out := range outputs {
		for _, s := range secrets {
			// Any 6 characters of a secret beyond its first 4 would be a leak.
			for i := 4; i+6 <= len(s); i++ {
				if strings.Contains(out, s[i:i+6]) {
					t.Fatalf("output holds part of a secret (%q...): %s", s[:4], out)
				}
			}
		}
	}
}

func TestExcerptLine(t *testing.T) {
	pw := "pw-" + rnd(17)
	root := tree(t, map[string]string{"/etc/app/app.ini": "[a]\nx = 1\n\n[db]\npassword = " + pw + "\n"})
	r, err := Scan(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("findings %v", r.Findings)
	}
	f := r.Findings[0]
	if f.Line != 5 || f.Excerpt != "password = "+pw[:4]+"…[REDACTED]" || f.String() != "/etc/app/app.ini:5: config-password: password = "+pw[:4]+"…[REDACTED]" {
		t.Errorf("finding %+v", f)
	}
	if got := redact("abcdefgh"); got != "ab…[REDACTED]" {
		t.Errorf("a short secret shows %q, want a quarter of it", got)
	}
	if got := redact("abc"); got != "…[REDACTED]" {
		t.Errorf("a 3-character secret shows %q", got)
	}
}

func TestSizeLimitAndBinary(t *testing.T) {
	ghp := "gh" + "p_" + rnd(36)
	root := tree(t, map[string]string{
		"/srv/big.txt":   strings.Repeat("x", 2048) + "\nGH=" + ghp + "\n",
		"/srv/small.txt": "GH=" + ghp + "\n",
		"/srv/late-nul":  strings.Repeat("y", binaryProbe) + "\x00\nGH=" + ghp + "\n", // a NUL after the probe: text
	})
	r, err := Scan(context.Background(), root, Options{MaxFileSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if g := fmt.Sprint(got(r)); g != "[{/srv/small.txt github-token}]" {
		// late-nul is larger than 1 KiB too
		t.Errorf("with a 1 KiB limit: %s", g)
	}
	r, err = Scan(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := fmt.Sprint(got(r)); g != "[{/srv/big.txt github-token} {/srv/late-nul github-token} {/srv/small.txt github-token}]" {
		t.Errorf("with the default limit: %s", g)
	}
}

func TestAllowlist(t *testing.T) {
	fx := newFixture(t)
	write(t, fx.root, "/srv/fixtures/a.env", "GITHUB_TOKEN="+"gh"+"p_"+rnd(36)+"\n")
	write(t, fx.root, "/srv/fixtures/real.env", "GITHUB_TOKEN="+"gh"+"p_"+rnd(36)+"\n")
	write(t, fx.root, "/opt/x/demo.key.example", makeKeys(t).ecSEC1)
	write(t, fx.root, "/etc/ssl/private/ssl-cert-snakeoil.key", makeKeys(t).pkcs8)
	allow := filepath.Join(t.TempDir(), AllowlistName)
	if err := os.WriteFile(allow, []byte(`# test allowlist
/etc/app/app.conf
github-token:/var/www/**
*.example
/srv/fixtures/
!/srv/fixtures/real.env
aws-access-key:/opt/app/.aws/credentials
`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Scan(context.Background(), fx.root, Options{AllowlistFile: allow})
	if err != nil {
		t.Fatal(err)
	}
	has := map[want]bool{}
	for _, w := range got(r) {
		has[w] = true
	}
	for _, w := range []want{{"/etc/app/app.conf", "config-password"}, {"/var/www/site/deploy.sh", "github-token"},
		{"/opt/x/demo.key.example", "private-key"}, {"/srv/fixtures/a.env", "github-token"},
		{"/opt/app/.aws/credentials", "aws-access-key"}, {"/etc/ssl/private/ssl-cert-snakeoil.key", "private-key"}} {
		if has[w] {
			t.Errorf("%v is allowlisted but reported", w)
		}
	}
	for _, w := range []want{{"/srv/fixtures/real.env", "github-token"}, {"/opt/app/.aws/credentials", "aws-secret-key"},
		{"/var/www/html/wp-config.php", "config-password"}} {
		if !has[w] {
			t.Errorf("%v is not allowlisted but missing", w)
		}
	}
	// Silenced by RULE:GLOB lines: deploy.sh, the access key ID and the snakeoil key (the default
	// allowlist); the files under path globs are not read by the rules at all.
	if r.Suppressed != 3 {
		t.Errorf("suppressed %d, want 3", r.Suppressed)
	}

	// Without the default allowlist the snakeoil key is a finding.
	r, err = Scan(context.Background(), fx.root, Options{AllowlistFile: allow, NoDefaultAllowlist: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range got(r) {
		found = found || w == want{"/etc/ssl/private/ssl-cert-snakeoil.key", "private-key"}
	}
	if !found {
		t.Error("NoDefaultAllowlist: the snakeoil key is not reported")
	}

	if _, err := Scan(context.Background(), fx.root, Options{AllowlistFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing allowlist file is not an error")
	}
}

func TestParseAllowlist(t *testing.T) {
	for _, bad := range []string{"github-tokn:/etc/x", "/etc/[x", "private-key:", "/"} {
		if _, err := ParseAllowlist(strings.NewReader(bad), "allow"); err == nil || !strings.Contains(err.Error(), "allow:1") {
			t.Errorf("%q: %v, want an error naming allow:1", bad, err)
		}
	}
	a, err := ParseAllowlist(strings.NewReader("/a/**/c.txt\nb.conf\n/d/\n/e/*.key\nwifi-psk:/etc/x\n"), "allow")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rule, path string
		ok         bool
	}{
		{"private-key", "/a/c.txt", true},
		{"private-key", "/a/x/y/c.txt", true},
		{"private-key", "/b/c.txt", false},
		{"private-key", "/x/y/b.conf", true},
		{"private-key", "/b.conf", true},
		{"private-key", "/d/f/g", true},
		{"private-key", "/d", false}, // a directory pattern: what is below, not a file named d
		{"private-key", "/e/1.key", true},
		{"private-key", "/e/f/1.key", false},
		{"wifi-psk", "/etc/x", true},
		{"netrc", "/etc/x", false},
		{RuleForbidden, "/a/c.txt", false}, // path globs never silence forbidden values
	} {
		if got := a.Allows(c.rule, c.path); got != c.ok {
			t.Errorf("Allows(%s, %s) = %v, want %v", c.rule, c.path, got, c.ok)
		}
	}
	if DefaultAllowlist().Len() == 0 {
		t.Error("the default allowlist is empty")
	}
	for _, e := range DefaultAllowlist().entries {
		if e.rule == "" {
			t.Errorf("%s: a default entry without a rule hides every rule there", e.source)
		}
	}
}

func TestForbiddenValues(t *testing.T) {
	v1 := rnd(32)
	v2 := "pw-" + rnd(20)
	v3 := rnd(24) // only in a binary
	v4 := rnd(16) // only in a big file
	short := "abc"
	root := tree(t, map[string]string{
		"/etc/app/app.txt": "line one\nconfig " + v1 + " and " + v1 + "\n",
		"/srv/data.json":   `{"v": "` + v2 + `"}`,
		"/usr/lib/x.so":    "\x00\x01" + v3 + "\x02",
		"/srv/big.bin":     strings.Repeat("z", 3000) + v4,
		"/srv/clean":       "nothing here",
		"/etc/passwd":      "root:x:0:0:root:/root:/bin/bash\n" + v2 + "\n",
	})
	forbidden := []secrets.Secret{secrets.Secret(v1), secrets.Secret(v2), secrets.Secret(short), secrets.Secret(v3), secrets.Secret(v4), secrets.Secret(v1)}
	allow := filepath.Join(t.TempDir(), "allow")
	// A path glob does not silence a forbidden value; forbidden-value: does.
	if err := os.WriteFile(allow, []byte("/srv/**\nforbidden-value:/etc/passwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Scan(context.Background(), root, Options{Forbidden: forbidden, MaxFileSize: 1024, AllowlistFile: allow})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range r.Findings {
		lines = append(lines, f.String())
	}
	got := strings.Join(lines, "\n")
	for _, w := range []string{
		"/etc/app/app.txt:2: forbidden-value: value of secret #1 (sha256 prefix " + sha8(v1) + "), 2 occurrences",
		"/srv/big.bin@3000: forbidden-value: value of secret #5 (sha256 prefix " + sha8(v4) + ")",
		"/srv/data.json:1: forbidden-value: value of secret #2 (sha256 prefix " + sha8(v2) + ")",
		"/usr/lib/x.so@2: forbidden-value: value of secret #4 (sha256 prefix " + sha8(v3) + ")",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, got)
		}
	}
	if len(r.Findings) != 4 || r.Suppressed != 1 {
		t.Errorf("%d findings, %d suppressed, want 4 and 1:\n%s", len(r.Findings), r.Suppressed, got)
	}
	if r.ForbiddenChecked != 4 || r.ForbiddenSkipped != 1 {
		t.Errorf("checked %d, skipped %d; want 4 (one duplicate) and 1 (short)", r.ForbiddenChecked, r.ForbiddenSkipped)
	}
	assertNoLeak(t, r, []string{v1, v2, v3, v4})
	if s := fmt.Sprintf("%v %s %+v", forbidden, forbidden, Options{Forbidden: forbidden}); strings.Contains(s, v1) {
		t.Error("Options print a forbidden value")
	}
}

func sha8(v string) string {
	fv, _ := forbiddenValues([]secrets.Secret{secrets.Secret(v)}, 1)
	return fv[0].prefix
}

// TestScanFile puts values across a chunk boundary and after a hole of a sparse file.
func TestScanFile(t *testing.T) {
	v1 := rnd(40)
	v2 := rnd(20)
	v3 := rnd(20) // nowhere
	disk := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	at1 := int64(streamChunk - 10) // straddles the first chunk boundary
	if _, err := f.WriteAt([]byte(v1), at1); err != nil {
		t.Fatal(err)
	}
	at2 := int64(64 << 20) // after a 60 MiB hole
	if _, err := f.WriteAt([]byte("\x00"+v2+"\x00"+v2), at2); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(80 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r, err := ScanFile(context.Background(), disk, Options{Forbidden: []secrets.Secret{secrets.Secret(v3), secrets.Secret(v1), secrets.Secret(v2)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 2 || r.Findings[0].Offset != at1 || r.Findings[1].Offset != at2+1 ||
		!strings.Contains(r.Findings[0].Excerpt, "secret #2 ") || !strings.HasSuffix(r.Findings[1].Excerpt, ", 2 occurrences") {
		t.Fatalf("findings %v", r.Findings)
	}
	if r.BytesScanned >= 80<<20 {
		t.Logf("read %d bytes: the holes were not skipped (no SEEK_DATA here?)", r.BytesScanned)
	}
	assertNoLeak(t, r, []string{v1, v2, v3})

	r, err = ScanFile(context.Background(), disk, Options{})
	if err != nil || len(r.Findings) != 0 || r.BytesScanned != 0 {
		t.Errorf("no forbidden values: %v, %v", r, err)
	}
	if _, err := ScanFile(context.Background(), filepath.Join(t.TempDir(), "none"), Options{}); err == nil {
		t.Error("a missing file is not an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanFile(ctx, disk, Options{Forbidden: []secrets.Secret{secrets.Secret(v1)}}); err == nil {
		t.Error("a cancelled scan succeeded")
	}
}

func TestRootSymlink(t *testing.T) {
	root := tree(t, map[string]string{"/etc/app.env": "GITHUB_TOKEN=" + "gh" + "p_" + rnd(36) + "\n"})
	link := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	r, err := Scan(context.Background(), link, Options{})
	if err != nil || r.FilesScanned != 1 || len(r.Findings) != 1 {
		t.Errorf("a root behind a symbolic link: %v, %v", r, err)
	}
}

func TestScanErrors(t *testing.T) {
	if _, err := Scan(context.Background(), filepath.Join(t.TempDir(), "none"), Options{}); err == nil {
		t.Error("a missing tree is not an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, newFixture(t).root, Options{}); err == nil {
		t.Error("a cancelled scan succeeded")
	}
}

func TestLooksLikeWordsAndEntropy(t *testing.T) {
	for _, v := range []string{"use_rsa_sha2_algorithms", "TEST_ENCRYPTION_KEY1", "projects/123/secrets/x/versions/1", "PKCS12PrivateKeyTypes", "ui_byod_reg_optional_content_1"} {
		if !looksLikeWords(v) {
			t.Errorf("%s does not look like words", v)
		}
	}
	// A random token now and then has long runs of one letter case and reads as words (a miss of
	// the generic rule, which the token-shaped rules do not share): keep that rare.
	words := 0
	for i := 0; i < 1000; i++ {
		if looksLikeWords(rawRnd(32)) {
			words++
		}
	}
	if words > 50 {
		t.Errorf("%d of 1000 random 32-character tokens look like words, want at most 5%%", words)
	}
	t.Logf("%d of 1000 random 32-character tokens look like words", words)
	for _, v := range []string{"e31060a7-21fc-e277-6240-25983c6c4592", base64.StdEncoding.EncodeToString([]byte(rnd(30)))} {
		if looksLikeWords(v) {
			t.Errorf("%s looks like words", v)
		}
	}
	if e := entropy("aaaa"); e != 0 {
		t.Errorf("entropy(aaaa) = %v", e)
	}
	if e := entropy("abcd"); e != 2 {
		t.Errorf("entropy(abcd) = %v", e)
	}
}
