package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// uncommentCertificate is examples/homelab's drover.hcl with web's commented certificate block
// written out, and nginx among web's services: what web/README.md tells a reader to do.
func uncommentCertificate(t *testing.T, src string) string {
	t.Helper()
	src = uncommentBlock(t, src, `certificate "www"`)
	const run = "    run     = [\"systemctl enable nginx\"]\n"
	if !strings.Contains(src, run) {
		t.Fatal("examples/homelab/drover.hcl: web's image has no run line to put services after")
	}
	return strings.Replace(src, run, run+"    services = [\"nginx\"]\n", 1)
}

// TestHomelabCertificate: the certificate block examples/homelab shows web (commented, as the demo
// has no Vault) is valid, and the controller puts it in web's user-data with ${role.dns_name}
// resolved to the cutover's name in the home zone, the instance's address left for drover-boot,
// and the one issue path for web's policy.
func TestHomelabCertificate(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples/homelab", dir)
	path := filepath.Join(dir, "drover.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(uncommentCertificate(t, string(src))), 0o644); err != nil {
		t.Fatal(err)
	}
	f, a := loadHomelab(t, path, "certificate block is")
	cr := newCredentials(f, a.newProviders(f, filepath.Join(dir, ".drover")))
	if cr == nil || !cr.Wants("web") {
		t.Fatal("web's certificate does not make it want a boot credential")
	}
	if err := cr.resolveDNSNames(context.Background()); err != nil {
		t.Fatal(err)
	}
	certs := cr.roles["web"].Certificates
	want := bootdata.Certificate{Name: "www", PKIRole: "web", Mount: "pki", CommonName: "www.lab.example", IPSANs: []string{bootdata.InstanceAddress},
		TTL: 72 * 3600, Reload: []string{"nginx"}}
	if len(certs) != 1 || certs[0].CommonName != want.CommonName || !slices.Equal(certs[0].IPSANs, want.IPSANs) || certs[0].TTL != want.TTL ||
		certs[0].IssuePath() != "pki/issue/web" || !slices.Equal(certs[0].Reload, want.Reload) {
		t.Errorf("web's certificates in user-data: %+v, want %+v", certs, want)
	}
	if p := bootdata.IssuePaths(certs); !slices.Equal(p, []string{"pki/issue/web"}) {
		t.Errorf("issue paths for web's policy %v", p)
	}
}
