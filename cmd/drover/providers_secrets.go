package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/rollout"
)

// credentials gives instances of roles that declare secrets their boot credential from the fleet's
// vault block. Vault is contacted only when an instance is launched or destroyed, so commands that
// do neither (status, plan) work without VAULT_TOKEN.
type credentials struct {
	fleet *fleet.Fleet
	provs *providers
	roles map[string]bootdata.RoleSecrets

	mu      sync.Mutex
	issuers map[string]*bootdata.Issuer // by compute block: instances of each reach Vault their own way
	named   bool                        // the roles' certificates have their ${role.dns_name} resolved
}

var _ rollout.Credentials = (*credentials)(nil)

// newCredentials returns nil when no role declares secrets.
func newCredentials(f *fleet.Fleet, provs *providers) *credentials {
	roles := map[string]bootdata.RoleSecrets{}
	for _, r := range f.Roles {
		if files, certs := secretFiles(r), certificates(r); len(files) > 0 || len(certs) > 0 {
			rs := bootdata.RoleSecrets{Files: files, Certificates: certs}
			if r.Deploy != nil {
				rs.AWSIAMRole = r.Deploy.AWSIAMRole
			}
			roles[r.Name] = rs
		}
	}
	if len(roles) == 0 || f.Vault == nil {
		return nil
	}
	return &credentials{fleet: f, provs: provs, roles: roles, issuers: map[string]*bootdata.Issuer{}}
}

// secretFiles are the files drover-boot writes for a role: one JSON file per path of its secrets
// list, then its secret blocks, whose templates the image holds at images.SecretTemplatePath.
func secretFiles(r *fleet.Role) []bootdata.SecretFile {
	out := bootdata.FilesFor(r.Image.Secrets...)
	for _, s := range r.Image.SecretFiles {
		sf := bootdata.SecretFile{Path: s.Path, Field: s.Field, Name: s.Name, Owner: s.Owner, Mode: bootdata.Mode(s.Mode.Perm())}
		if s.Template != "" {
			sf.Template = images.SecretTemplatePath(s.Name)
		}
		out = append(out, sf)
	}
	return out
}

// certificates are the certificates drover-boot issues for a role, ${role.dns_name} still in them
// (resolveDNSNames replaces it).
func certificates(r *fleet.Role) []bootdata.Certificate {
	var out []bootdata.Certificate
	for _, c := range r.Image.Certificates {
		out = append(out, bootdata.Certificate{
			Name: c.Name, Mount: c.Mount, PKIRole: c.PKIRole, CommonName: c.CommonName,
			AltNames: c.AltNames, IPSANs: c.IPSANs, TTL: int64(c.TTL / time.Second),
			Owner: c.Owner, Mode: bootdata.Mode(c.Mode.Perm()), Reload: c.Reload,
		})
	}
	return out
}

// resolveDNSNames replaces ${role.dns_name} in the roles' certificates with each role's published
// name: its cutover's record in its dns block's zone, as the cutover writes it. It runs once, before
// the first issuer exists (the issuers share c.roles), with c.mu held.
func (c *credentials) resolveDNSNames(ctx context.Context) error {
	if c.named {
		return nil
	}
	for role, rs := range c.roles {
		r := c.fleet.Role(role)
		var resolved []bootdata.Certificate
		for _, cert := range rs.Certificates {
			if strings.Contains(cert.CommonName+strings.Join(cert.AltNames, " "), fleet.PlaceholderRoleDNSName) {
				name, err := c.dnsName(ctx, r)
				if err != nil {
					return err
				}
				repl := strings.NewReplacer(fleet.PlaceholderRoleDNSName, name)
				cert.CommonName = repl.Replace(cert.CommonName)
				alt := make([]string, len(cert.AltNames))
				for i, n := range cert.AltNames {
					alt[i] = repl.Replace(n)
				}
				cert.AltNames = alt
			}
			resolved = append(resolved, cert)
		}
		rs.Certificates = resolved
		c.roles[role] = rs
	}
	c.named = true
	return nil
}

// dnsName is the role's published name without its final dot: the cutover's record name in the dns
// block's zone (fleet validation made sure there is one).
func (c *credentials) dnsName(ctx context.Context, r *fleet.Role) (string, error) {
	if r.Deploy == nil || r.Deploy.Cutover.DNS == "" || r.Deploy.Cutover.Name == "" {
		return "", fmt.Errorf("role %q uses %s in a certificate but publishes no DNS name", r.Name, fleet.PlaceholderRoleDNSName)
	}
	name := r.Deploy.Cutover.Name
	if !strings.HasSuffix(name, ".") {
		p, err := c.provs.DNS(ctx, r.Deploy.Cutover.DNS)
		if err != nil {
			return "", fmt.Errorf("role %q: the zone of dns block %q, for %s: %w", r.Name, r.Deploy.Cutover.DNS, fleet.PlaceholderRoleDNSName, err)
		}
		if name == "@" {
			name = p.Zone()
		} else {
			name += "." + p.Zone()
		}
	}
	return strings.ToLower(strings.TrimSuffix(name, ".")), nil
}

// issuer is the issuer for the instances of role's compute block.
func (c *credentials) issuer(ctx context.Context, role string) (*bootdata.Issuer, error) {
	r := c.fleet.Role(role)
	if r == nil || r.Deploy == nil {
		return nil, fmt.Errorf("role %q is not deployed", role)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if iss, ok := c.issuers[r.Deploy.Compute]; ok {
		return iss, nil
	}
	if err := c.resolveDNSNames(ctx); err != nil {
		return nil, err
	}
	broker, err := c.provs.Secrets(ctx)
	if err != nil {
		return nil, err
	}
	ep, ok := c.fleet.Vault.Config.(secrets.Endpoint)
	if !ok {
		return nil, fmt.Errorf("the %s block does not say where instances log in", c.fleet.Vault.Type)
	}
	comp, err := c.provs.Compute(ctx, r.Deploy.Compute)
	if err != nil {
		return nil, err
	}
	addr, from := instanceVault(ep, comp)
	iss := &bootdata.Issuer{Broker: broker, Addr: addr, Roles: c.roles, BoundCIDRs: from, IAMServerID: ep.IAMServerID()}
	c.issuers[r.Deploy.Compute] = iss
	return iss, nil
}

func (c *credentials) Wants(role string) bool { _, ok := c.roles[role]; return ok }

func (c *credentials) Issue(ctx context.Context, role, instance, image string) ([]byte, string, error) {
	iss, err := c.issuer(ctx, role)
	if err != nil {
		return nil, "", err
	}
	return iss.Issue(ctx, role, instance, image)
}

func (c *credentials) Revoke(ctx context.Context, role, accessor string) error {
	iss, err := c.issuer(ctx, role)
	if err != nil {
		return err
	}
	return iss.Revoke(ctx, role, accessor)
}

// instanceVault is where the instances of comp log in: the address the block gives for instances
// when it names one (the operator knows the network they come from; drover does not), else Vault's
// own address as they see it.
func instanceVault(ep secrets.Endpoint, comp compute.Provider) (string, []netip.Prefix) {
	if a := ep.AddressForInstances(); a != "" {
		return a, nil
	}
	return instanceRoute(ep.ServerAddress(), comp)
}

// instanceRoute is Vault's address as the instances of comp see it, and, when known, the networks
// their connections reach Vault from: a Vault on this machine's loopback is reached another way from
// inside a VM of the lab (compute.HostRouter).
func instanceRoute(addr string, comp compute.Provider) (string, []netip.Prefix) {
	router, ok := comp.(compute.HostRouter)
	if !ok {
		return addr, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return addr, nil
	}
	ip, err := netip.ParseAddr(host)
	if host == "localhost" {
		ip, err = netip.MustParseAddr("127.0.0.1"), nil
	}
	if err != nil {
		return addr, nil
	}
	guest, from, ok := router.RouteToHost(ip)
	if !ok {
		return addr, nil
	}
	u.Host = net.JoinHostPort(guest.String(), port)
	return u.String(), from
}
