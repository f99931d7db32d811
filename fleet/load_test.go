package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// testCatalog knows one provider type per kind, with a config that has one attribute, so these tests
// exercise the decoder without depending on real providers (cmd/drover's golden tests use the real
// registry).
type testCatalog struct{}

type testConfig struct {
	Address string `hcl:"address,optional"`
}

func (testCatalog) NewConfig(kind, typ string) (any, bool, error) {
	if typ == "t" || (kind == KindSecrets && typ == "vault") || (kind == KindStore && typ == "local") {
		return &testConfig{}, true, nil
	}
	return nil, false, nil
}

func (testCatalog) Types(string) []string { return []string{"t"} }
func (testCatalog) Available(kind string) []string {
	switch kind {
	case KindSecrets:
		return []string{"vault"}
	case KindStore:
		return []string{"local", "t"}
	}
	return []string{"t"}
}
func (testCatalog) IPComputes(string) []string { return []string{"t"} }

func load(t *testing.T, src string, opts Options) (*Fleet, *Diagnostics) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte("server {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Providers = testCatalog{}
	if opts.Deploy == nil {
		opts.Deploy = testDeployCatalog{}
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = func(string) (string, bool) { return "", false }
	}
	return Load(path, opts)
}

const goodFleet = `
variable "domain" { default = "lab.example" }
variable "zone"   { default = "${var.domain}." }
variable "count"  {
  type    = number
  default = 2
}

compute "t" "lab" { address = env("LAB_ADDR", "127.0.0.1") }
dns "t" "home" { address = var.zone }
ip "t" "front" {}
vault {}

role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    files    = { "/etc/nginx/sites-enabled/default" = "site.conf" }
    file "/etc/motd" {
      content = upper("hello")
      mode    = "0600"
      owner   = "root:adm"
    }
    run     = ["systemctl enable nginx"]
    secrets = ["kv/data/web/tls"]
    secret "tls.key" {
      path  = "kv/data/web/tls"
      field = "key"
    }
    secret "htpasswd" {
      path     = "kv/data/web/app"
      template = "site.conf"
      owner    = "root:www-data"
      mode     = "0440"
    }
    services = ["nginx"]
    disk {
      min_size = "2GiB"
      formats  = ["raw"]
    }
  }
  deploy {
    compute  = "lab"
    count    = var.count
    health "http" {
      port     = 80
      interval = "1s"
      timeout  = "500ms"
    }
    cutover "dns" {
      dns  = "home"
      name = "www"
      ttl  = 30
    }
    keep_old     = "10m"
    auto_promote = true
  }
}
`

func TestLoadGoodFleet(t *testing.T) {
	f, diags := load(t, goodFleet, Options{Vars: map[string]string{"domain": "example.org"}})
	if diags.HasErrors() {
		var b strings.Builder
		_ = diags.WriteText(&b)
		t.Fatalf("unexpected diagnostics:\n%s", b.String())
	}
	if got := f.DNS[0].Config.(*testConfig).Address; got != "example.org." {
		t.Errorf("--var did not reach a dependent variable: zone = %q", got)
	}
	if got := f.Compute[0].Config.(*testConfig).Address; got != "127.0.0.1" {
		t.Errorf("env default: %q", got)
	}
	web := f.Role("web")
	if web == nil || web.Deploy == nil {
		t.Fatal("role web or its deploy block is missing")
	}
	img, dep := web.Image, web.Deploy
	if img.Arch != "amd64" || img.Builder != "debian" {
		t.Errorf("arch %q builder %q, want amd64 debian (from the default base)", img.Arch, img.Builder)
	}
	if len(img.Files) != 2 {
		t.Fatalf("files: %+v", img.Files)
	}
	if img.Files[0].Source != filepath.Join(f.Dir, "site.conf") || img.Files[0].Mode != 0o644 {
		t.Errorf("shorthand file: %+v", img.Files[0])
	}
	if motd := img.Files[1]; motd.Content == nil || *motd.Content != "HELLO" || motd.Mode != 0o600 || motd.Owner != "root:adm" {
		t.Errorf("file block: %+v", motd)
	}
	wantSecrets := []SecretFile{
		{Name: "tls.key", Path: "kv/data/web/tls", Field: "key"},
		{Name: "htpasswd", Path: "kv/data/web/app", Template: filepath.Join(f.Dir, "site.conf"), Owner: "root:www-data", Mode: 0o440},
	}
	if len(img.SecretFiles) != len(wantSecrets) {
		t.Fatalf("secret blocks: %+v", img.SecretFiles)
	}
	for i, want := range wantSecrets {
		got := img.SecretFiles[i]
		got.Range = hcl.Range{}
		if got != want {
			t.Errorf("secret block %d = %+v, want %+v", i, got, want)
		}
	}
	if got := img.SecretPaths(); !slices.Equal(got, []string{"kv/data/web/tls", "kv/data/web/app"}) {
		t.Errorf("SecretPaths = %v", got)
	}
	if !slices.Equal(img.Services, []string{"nginx"}) {
		t.Errorf("services = %v", img.Services)
	}
	if img.Disk.MinSize != 2<<30 || len(img.Disk.Formats) != 1 {
		t.Errorf("disk: %+v", img.Disk)
	}
	if dep.Count != 2 || dep.KeepOld != 10*time.Minute || !dep.AutoPromote || dep.Strategy != "bluegreen" {
		t.Errorf("deploy: %+v", dep)
	}
	if len(dep.Ports) != 1 || dep.Ports[0] != 80 {
		t.Errorf("ports default to the health checks' ports, got %v", dep.Ports)
	}
	hc := dep.Health[0]
	if hc.Interval != time.Second || hc.Timeout != 500*time.Millisecond || hc.Expect != 200 || hc.Healthy != 2 {
		t.Errorf("health: %+v", hc)
	}
	if dep.Cutover != (Cutover{Type: "dns", DNS: "home", Name: "www", TTL: 30}) {
		t.Errorf("cutover: %+v", dep.Cutover)
	}
}

func TestVariablesFromEnvironment(t *testing.T) {
	env := map[string]string{"DROVER_VAR_count": "3"}
	f, diags := load(t, goodFleet, Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if f.Role("web").Deploy.Count != 3 {
		t.Errorf("DROVER_VAR_count did not set count: %d", f.Role("web").Deploy.Count)
	}
}

// TestAllProblemsAtOnce makes sure decoding goes on after an error: three independent mistakes give
// three diagnostics, in source order.
func TestAllProblemsAtOnce(t *testing.T) {
	src := strings.NewReplacer(`count    = var.count`, `count    = 0`, `keep_old     = "10m"`, `keep_old     = "ten"`,
		`port     = 80`, `port     = 0`).Replace(goodFleet)
	_, diags := load(t, src, Options{})
	if diags.Errors() != 3 {
		var b strings.Builder
		_ = diags.WriteText(&b)
		t.Fatalf("want 3 errors, got %d:\n%s", diags.Errors(), b.String())
	}
	for i := 1; i < len(diags.Diags); i++ {
		if diags.Diags[i-1].Subject.Start.Line > diags.Diags[i].Subject.Start.Line {
			t.Errorf("diagnostics not in source order")
		}
	}
}

func TestCaretUnderSubject(t *testing.T) {
	_, diags := load(t, "role \"web\" {\n  image {\n\tbase = \"nope\"\n  }\n}\n", Options{})
	var b strings.Builder
	if err := diags.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "    3: \tbase = \"nope\"\n       \t       ^^^^^^\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("caret line not aligned (tabs kept):\n%s", b.String())
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2G": 2 << 30, "1024": 1024, "3GiB": 3 << 30, "10K": 10 << 10} {
		if got, ok := parseSize(in); !ok || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "2TB", "-1G", "lots", "99999999999999999999G"} {
		if _, ok := parseSize(bad); ok {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
