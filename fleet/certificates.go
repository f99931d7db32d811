package fleet

import (
	"io/fs"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Placeholders a certificate's names may hold. They are written in HCL as references,
// "${instance.address}" or "${role.dns_name}", evaluated to themselves: the controller resolves the
// role's DNS name when it writes the user-data, drover-boot the instance's address at boot.
const (
	PlaceholderInstanceAddress = "${instance.address}"
	PlaceholderRoleDNSName     = "${role.dns_name}"
)

// MinCertificateTTL is the shortest ttl a certificate block takes (drover-boot renews at two thirds).
const MinCertificateTTL = 30 * time.Second

// Certificate is a certificate block: drover-boot issues it from Vault's PKI engine at boot with
// the instance's own token, writes NAME.key and NAME.crt (certificate and issuing CA) under
// /run/drover/secrets, renews it at two thirds of its lifetime and reloads the Reload units.
type Certificate struct {
	Name       string
	Mount      string // the PKI mount, "pki" unless set
	PKIRole    string
	CommonName string   // may hold the placeholders
	AltNames   []string // may hold the placeholders
	IPSANs     []string // IP addresses or PlaceholderInstanceAddress
	TTL        time.Duration
	Owner      string      // "user:group"; empty means root:root
	Mode       fs.FileMode // zero means 0400
	Reload     []string    // units reload-or-restarted after a renewal
	Range      hcl.Range
}

// IssuePath is the Vault API path the certificate is issued at, the one the role's policy grants.
func (c Certificate) IssuePath() string { return c.Mount + "/issue/" + c.PKIRole }

// UsesDNSName reports whether a name of c holds PlaceholderRoleDNSName.
func (c Certificate) UsesDNSName() bool {
	for _, n := range append([]string{c.CommonName}, c.AltNames...) {
		if strings.Contains(n, PlaceholderRoleDNSName) {
			return true
		}
	}
	return false
}

var (
	certificateSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "pki_role", Required: true}, {Name: "common_name", Required: true}, {Name: "alt_names"}, {Name: "ip_sans"},
		{Name: "ttl", Required: true}, {Name: "owner"}, {Name: "mode"}, {Name: "reload"}, {Name: "mount"},
	}}
	pkiRolePattern  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	pkiMountPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)
	hostnamePattern = regexp.MustCompile(`^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$`)
)

// certificateContext is the evaluation context of a certificate block: the fleet's, plus the
// instance and role objects whose attributes evaluate to their placeholders. A reference to any
// other attribute of them is HCL's own "Unsupported attribute" diagnostic, at the reference.
func (d *decoder) certificateContext() *hcl.EvalContext {
	ctx := d.ctx.NewChild()
	ctx.Variables = map[string]cty.Value{
		"instance": cty.ObjectVal(map[string]cty.Value{"address": cty.StringVal(PlaceholderInstanceAddress)}),
		"role":     cty.ObjectVal(map[string]cty.Value{"dns_name": cty.StringVal(PlaceholderRoleDNSName)}),
	}
	return ctx
}

// decodeCertificate reads a certificate "NAME" block.
func (d *decoder) decodeCertificate(b *hcl.Block) (Certificate, bool) {
	cert := Certificate{Name: b.Labels[0], Mount: "pki", Range: b.DefRange}
	ok := true
	if !secretNamePattern.MatchString(cert.Name) || cert.Name == "." || cert.Name == ".." {
		d.errorf(b.LabelRanges[0], "Invalid certificate name",
			"A certificate's name names its files NAME.key and NAME.crt under /run/drover/secrets: letters, digits, '.', '_', '-', '@' and '+', no slash; got %q.", cert.Name)
		ok = false
	}
	outer := d.ctx
	d.ctx = d.certificateContext()
	defer func() { d.ctx = outer }()
	c := d.content(b.Body, certificateSchema)
	bad := func(attr, summary, format string, args ...any) {
		d.errorf(c.Attributes[attr].Expr.Range(), summary, format, args...)
		ok = false
	}
	if d.str(c.Attributes, "mount", &cert.Mount) && !pkiMountPattern.MatchString(cert.Mount) {
		bad("mount", "Invalid PKI mount", "\"mount\" is the path a PKI secrets engine is mounted at, such as \"pki\" or \"pki_int\"; got %q.", cert.Mount)
	}
	if d.str(c.Attributes, "pki_role", &cert.PKIRole) && !pkiRolePattern.MatchString(cert.PKIRole) {
		bad("pki_role", "Invalid PKI role", "\"pki_role\" names a role of the PKI engine (letters, digits, '.', '_', '-'), got %q.", cert.PKIRole)
	}
	if d.str(c.Attributes, "common_name", &cert.CommonName) {
		if p := certNameProblem(cert.CommonName); p != "" {
			bad("common_name", "Invalid certificate name", "\"common_name\" %s, got %q.", p, cert.CommonName)
		}
	}
	if d.strings(c.Attributes, "alt_names", &cert.AltNames) {
		for _, n := range cert.AltNames {
			if p := certNameProblem(n); p != "" {
				bad("alt_names", "Invalid certificate name", "Each of \"alt_names\" %s, got %q.", p, n)
			}
		}
	}
	if d.strings(c.Attributes, "ip_sans", &cert.IPSANs) {
		for _, ip := range cert.IPSANs {
			if _, err := netip.ParseAddr(ip); err != nil && ip != PlaceholderInstanceAddress {
				bad("ip_sans", "Invalid IP address", "Each of \"ip_sans\" is an IP address or \"%s\", got %q.", PlaceholderInstanceAddress, ip)
			}
		}
	}
	if d.duration(c.Attributes, "ttl", &cert.TTL) && (cert.TTL < MinCertificateTTL || cert.TTL%time.Second != 0) {
		bad("ttl", "Invalid certificate ttl",
			"A certificate's \"ttl\" is whole seconds and at least %s: drover-boot renews it at two thirds of it; got %s.", MinCertificateTTL, cert.TTL)
	}
	if d.str(c.Attributes, "owner", &cert.Owner) && (!strings.Contains(cert.Owner, ":") || !ownerPattern.MatchString(cert.Owner)) {
		bad("owner", "Invalid certificate owner", "\"owner\" must be \"user:group\" (names or numbers), got %q.", cert.Owner)
	}
	var mode string
	if d.str(c.Attributes, "mode", &mode) {
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || m&^0o640 != 0 || m&0o400 == 0 {
			bad("mode", "Invalid certificate mode",
				"A certificate's \"mode\" lets its owner read its files and grants at most 0640 (owner read-write, group read), as an octal string such as \"0400\" or \"0440\"; got %q.", mode)
		}
		cert.Mode = fsMode(m)
	}
	if d.strings(c.Attributes, "reload", &cert.Reload) {
		for _, u := range cert.Reload {
			if !unitPattern.MatchString(u) {
				bad("reload", "Invalid service name", "\"reload\" lists systemd units such as \"nginx\", got %q.", u)
			}
		}
	}
	return cert, ok
}

// certNameProblem says what is wrong with a certificate's common or alternative name, or "".
func certNameProblem(n string) string {
	sample := strings.NewReplacer(PlaceholderInstanceAddress, "192.0.2.1", PlaceholderRoleDNSName, "web.example.net").Replace(n)
	if _, err := netip.ParseAddr(sample); err == nil {
		return ""
	}
	if strings.Contains(sample, "${") || len(sample) > 253 || !hostnamePattern.MatchString(sample) {
		return "is a DNS name (\"*.\" allowed first) or an IP address, in which ${instance.address} and ${role.dns_name} may stand for the instance's address and the role's DNS name"
	}
	return ""
}

// checkCertificates checks what a role's certificates need of the rest of the role: the units they
// reload are among the role's services (those start after drover-boot and can use the files), and
// a role whose names use ${role.dns_name} has a DNS name: a cutover that publishes one.
func (d *decoder) checkCertificates(role *Role) {
	for _, c := range role.Image.Certificates {
		for _, u := range c.Reload {
			if !contains(role.Image.Services, u) && !contains(role.Image.Services, strings.TrimSuffix(u, ".service")) && !contains(role.Image.Services, u+".service") {
				d.errorf(c.Range, "Reload of a service the role does not start",
					"Certificate %q reloads %q, which is not in the image's \"services\": only those start after drover-boot has written the certificate. Add it to services, or drop it from reload.", c.Name, u)
			}
		}
		if c.UsesDNSName() && (role.Deploy == nil || role.Deploy.Cutover.DNS == "" || role.Deploy.Cutover.Name == "") {
			d.errorf(c.Range, "No DNS name for ${role.dns_name}",
				"Certificate %q uses ${role.dns_name}, but role %q publishes no DNS name: that takes a deploy block whose cutover names a dns block and a record name.", c.Name, role.Name)
		}
	}
}
