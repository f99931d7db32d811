package bootdata

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// InstanceAddress is the one placeholder a Certificate's names may still hold in user-data:
// drover-boot replaces it with the instance's own address, the source address of its route to
// Vault (the controller cannot know it before the instance runs). The role's DNS name
// (${role.dns_name} in the fleet) is resolved by the controller before the user-data is written.
const InstanceAddress = "${instance.address}"

// DefaultPKIMount is the PKI secrets engine mount an empty Certificate.Mount means.
const DefaultPKIMount = "pki"

// MinCertificateTTL is the shortest certificate lifetime accepted: renewal at two thirds of it must
// leave time to issue and reload.
const MinCertificateTTL = 30 // seconds

// Certificate is one certificate drover-boot issues from Vault's PKI secrets engine with the
// instance's own token (POST MOUNT/issue/PKI_ROLE, the one path of that engine the role's policy
// grants), before the role's services start. It writes NAME.key (the private key) and NAME.crt
// (the certificate followed by its issuing CA) under the secrets directory, renews it at two thirds
// of its lifetime, and then reload-or-restarts the Reload units.
type Certificate struct {
	// Name names the files: NAME.key and NAME.crt.
	Name string `json:"name"`
	// Mount is the PKI mount; empty means DefaultPKIMount.
	Mount string `json:"mount,omitempty"`
	// PKIRole is the PKI role issued against.
	PKIRole    string   `json:"pki_role"`
	CommonName string   `json:"common_name"`
	AltNames   []string `json:"alt_names,omitempty"`
	IPSANs     []string `json:"ip_sans,omitempty"`
	// TTL is the lifetime asked for, in seconds (the PKI role's max_ttl may shorten it).
	TTL int64 `json:"ttl"`
	// Owner and Mode apply to both files; empty and zero mean root:root and 0400.
	Owner string `json:"owner,omitempty"`
	Mode  Mode   `json:"mode,omitempty"`
	// Reload are the systemd units reload-or-restarted after a renewal.
	Reload []string `json:"reload,omitempty"`
}

// MountOrDefault returns Mount, DefaultPKIMount when empty.
func (c Certificate) MountOrDefault() string {
	if m := strings.Trim(c.Mount, "/"); m != "" {
		return m
	}
	return DefaultPKIMount
}

// IssuePath is the API path the certificate is issued at: "pki/issue/web".
func (c Certificate) IssuePath() string { return c.MountOrDefault() + "/issue/" + c.PKIRole }

// KeyName and ChainName are the file names under the secrets directory.
func (c Certificate) KeyName() string   { return c.Name + ".key" }
func (c Certificate) ChainName() string { return c.Name + ".crt" }

// File is the secret-file view of the certificate's files (owner and mode): what drover-boot's
// writer takes.
func (c Certificate) File(name string) SecretFile {
	return SecretFile{Path: c.IssuePath(), Name: name, Owner: c.Owner, Mode: c.Mode}
}

var (
	pkiRoleRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// hostnameRE is a DNS name, or a wildcard one, after placeholders are replaced.
	hostnameRE = regexp.MustCompile(`^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$`)
	unitRE     = regexp.MustCompile(`^[A-Za-z0-9@_.:-]+$`)
)

// ResolveName replaces InstanceAddress in a name with addr.
func ResolveName(name string, addr netip.Addr) string {
	return strings.ReplaceAll(name, InstanceAddress, addr.String())
}

// nameProblem says what is wrong with a common or alternative name as user-data carries it, or "".
func nameProblem(n string) string {
	sample := strings.ReplaceAll(n, InstanceAddress, "192.0.2.1")
	if strings.Contains(sample, "${") {
		return "the only placeholder left for drover-boot is " + InstanceAddress
	}
	if _, err := netip.ParseAddr(sample); err == nil {
		return ""
	}
	if len(sample) > 253 || !hostnameRE.MatchString(sample) {
		return "want a DNS name or an IP address"
	}
	return ""
}

func (c Certificate) validate() error {
	if !nameRE.MatchString(c.Name) || c.Name == "." || c.Name == ".." {
		return fmt.Errorf("name %q: want a plain file name (letters, digits, '.', '_', '-', '@', '+'; no slash)", c.Name)
	}
	if !mountRE.MatchString(c.MountOrDefault()) {
		return fmt.Errorf("mount %q: want letters, digits, '-', '_' and '/'", c.Mount)
	}
	if !pkiRoleRE.MatchString(c.PKIRole) {
		return fmt.Errorf("pki_role %q: want letters, digits, '.', '_' and '-'", c.PKIRole)
	}
	if p := nameProblem(c.CommonName); p != "" {
		return fmt.Errorf("common_name %q: %s", c.CommonName, p)
	}
	for _, n := range c.AltNames {
		if p := nameProblem(n); p != "" {
			return fmt.Errorf("alt_names %q: %s", n, p)
		}
	}
	for _, ip := range c.IPSANs {
		if _, err := netip.ParseAddr(ip); err != nil && ip != InstanceAddress {
			return fmt.Errorf("ip_sans %q: want an IP address or %s", ip, InstanceAddress)
		}
	}
	if c.TTL < MinCertificateTTL {
		return fmt.Errorf("ttl %d: want at least %d seconds", c.TTL, MinCertificateTTL)
	}
	if c.Owner != "" && !ownerRE.MatchString(c.Owner) {
		return fmt.Errorf("owner %q: want user:group", c.Owner)
	}
	if m := c.File(c.KeyName()).Perm(); m&^0o640 != 0 || m&0o400 == 0 {
		return fmt.Errorf("mode %s: want the owner's read, and at most 0640 (owner read-write, group read)", Mode(m))
	}
	for _, u := range c.Reload {
		if !unitRE.MatchString(u) {
			return fmt.Errorf("reload %q: want a systemd unit name", u)
		}
	}
	return nil
}

// validateCertificates checks each certificate and that no file name is used twice, among them or
// by the secret files in taken.
func validateCertificates(certs []Certificate, taken []string) error {
	for i, c := range certs {
		if err := c.validate(); err != nil {
			return fmt.Errorf("bootdata: certificates[%d]: %w", i, err)
		}
		for _, n := range []string{c.KeyName(), c.ChainName()} {
			if slices.Contains(taken, n) {
				return fmt.Errorf("bootdata: certificates[%d]: file %q is written twice", i, n)
			}
			taken = append(taken, n)
		}
	}
	return nil
}

// IssuePaths are the distinct issue paths of certs: what the role's policy may update.
func IssuePaths(certs []Certificate) []string {
	var out []string
	for _, c := range certs {
		if p := c.IssuePath(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
