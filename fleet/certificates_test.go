package fleet

import (
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// TestCertificateDecoded: a certificate block with every value set and one with the defaults; the
// placeholders evaluate to themselves, written as references or as text, and the fleet's own
// variables still work inside the block.
func TestCertificateDecoded(t *testing.T) {
	src := `
certificate "tls" {
  pki_role    = "web"
  mount       = "pki_int"
  common_name = "${role.dns_name}"
  alt_names   = ["${instance.address}.nip.io", "www.${var.domain}"]
  ip_sans     = [instance.address, "10.0.0.1"]
  ttl         = "72h"
  owner       = "root:www-data"
  mode        = "0440"
  reload      = ["nginx"]
}
certificate "api" {
  pki_role    = "api"
  common_name = "api.example.net"
  ttl         = "90s"
}
`
	file, diags := hclparse.NewParser().ParseHCL([]byte(src), "drover.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := &decoder{ctx: &hcl.EvalContext{Variables: map[string]cty.Value{"var": objectOf(map[string]cty.Value{"domain": cty.StringVal("example.net")})}}, declaredBroken: map[string]bool{}}
	c := d.content(file.Body, &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "certificate", LabelNames: []string{"name"}}}})
	var got []Certificate
	for _, b := range c.Blocks {
		cert, ok := d.decodeCertificate(b)
		if !ok {
			t.Errorf("certificate %s refused", cert.Name)
		}
		got = append(got, cert)
	}
	if d.diags.HasErrors() {
		t.Fatalf("diagnostics: %v", d.diags)
	}
	tls, api := got[0], got[1]
	if tls.Mount != "pki_int" || tls.PKIRole != "web" || tls.CommonName != PlaceholderRoleDNSName ||
		!slices.Equal(tls.AltNames, []string{PlaceholderInstanceAddress + ".nip.io", "www.example.net"}) ||
		!slices.Equal(tls.IPSANs, []string{PlaceholderInstanceAddress, "10.0.0.1"}) || tls.TTL != 72*time.Hour ||
		tls.Owner != "root:www-data" || tls.Mode != fs.FileMode(0o440) || !slices.Equal(tls.Reload, []string{"nginx"}) {
		t.Errorf("tls decoded as %+v", tls)
	}
	if tls.IssuePath() != "pki_int/issue/web" || !tls.UsesDNSName() {
		t.Errorf("tls: issue path %s, uses dns name %v", tls.IssuePath(), tls.UsesDNSName())
	}
	if api.Mount != "pki" || api.Owner != "" || api.Mode != 0 || api.TTL != 90*time.Second || api.UsesDNSName() || api.IssuePath() != "pki/issue/api" {
		t.Errorf("api decoded as %+v, want the defaults (mount pki, root:root 0400)", api)
	}
}
