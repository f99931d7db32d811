package bootdata_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

func withCertificate(edit func(*bootdata.Certificate)) bootdata.UserData {
	u := sample()
	c := bootdata.Certificate{
		Name: "site", PKIRole: "web", CommonName: "web.lab.example", AltNames: []string{bootdata.InstanceAddress + ".nip.io"},
		IPSANs: []string{bootdata.InstanceAddress, "10.0.0.1"}, TTL: 90, Owner: "root:www-data", Mode: 0o440, Reload: []string{"nginx"},
	}
	if edit != nil {
		edit(&c)
	}
	u.Certificates = []bootdata.Certificate{c}
	return u
}

func TestCertificateRoundTrip(t *testing.T) {
	u := withCertificate(nil)
	b, err := bootdata.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bootdata.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, u)
	}
	c := got.Certificates[0]
	if c.IssuePath() != "pki/issue/web" || c.KeyName() != "site.key" || c.ChainName() != "site.crt" {
		t.Errorf("issue path %s, files %s %s", c.IssuePath(), c.KeyName(), c.ChainName())
	}
	if got := bootdata.ResolveName(c.AltNames[0], netip.MustParseAddr("10.0.2.15")); got != "10.0.2.15.nip.io" {
		t.Errorf("resolved %q", got)
	}
	if s := u.String(); !strings.Contains(s, "certificate site from pki/issue/web") || strings.Contains(s, token) {
		t.Errorf("String: %s", s)
	}
	if p := bootdata.IssuePaths(append(u.Certificates, u.Certificates[0])); len(p) != 1 || p[0] != "pki/issue/web" {
		t.Errorf("IssuePaths %v", p)
	}
	// Certificates alone make a vault section worth having.
	u.Secrets = nil
	if _, err := bootdata.Marshal(u); err != nil {
		t.Errorf("certificates without secrets: %v", err)
	}
	u.Vault = nil
	if _, err := bootdata.Marshal(u); err == nil || !strings.Contains(err.Error(), "certificates without a vault section") {
		t.Errorf("certificates without vault: %v", err)
	}
}

func TestCertificateValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*bootdata.Certificate)
		want string
	}{
		{"unresolved dns name", func(c *bootdata.Certificate) { c.CommonName = "${role.dns_name}" }, "the only placeholder left for drover-boot is ${instance.address}"},
		{"bad alt name", func(c *bootdata.Certificate) { c.AltNames = []string{"a b"} }, `alt_names "a b"`},
		{"bad ip", func(c *bootdata.Certificate) { c.IPSANs = []string{"host.example"} }, `ip_sans "host.example"`},
		{"short ttl", func(c *bootdata.Certificate) { c.TTL = 10 }, "ttl 10: want at least 30 seconds"},
		{"no pki role", func(c *bootdata.Certificate) { c.PKIRole = "" }, `pki_role ""`},
		{"bad mount", func(c *bootdata.Certificate) { c.Mount = "pki/../sys" }, `mount "pki/../sys"`},
		{"slash in name", func(c *bootdata.Certificate) { c.Name = "a/b" }, `name "a/b"`},
		{"file of a secret", func(c *bootdata.Certificate) { c.Name = "tls" }, `file "tls.key" is written twice`},
		{"world readable", func(c *bootdata.Certificate) { c.Mode = 0o644 }, "mode 0644"},
		{"bad unit", func(c *bootdata.Certificate) { c.Reload = []string{"nginx; reboot"} }, `reload "nginx; reboot"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := withCertificate(tc.edit).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
