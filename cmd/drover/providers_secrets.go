package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/rollout"
)

// credentials gives instances of roles that declare secrets their boot credential from the fleet's
// vault block. Vault is contacted only when an instance is launched or destroyed, so commands that
// do neither (status, plan) work without VAULT_TOKEN.
type credentials struct {
	fleet *fleet.Fleet
	roles map[string]bootdata.RoleSecrets
	once  sync.Once
	iss   *bootdata.Issuer
	err   error
}

var _ rollout.Credentials = (*credentials)(nil)

// newCredentials returns nil when no role declares secrets.
func newCredentials(f *fleet.Fleet) *credentials {
	roles := map[string]bootdata.RoleSecrets{}
	for _, r := range f.Roles {
		if files := secretFiles(r); len(files) > 0 {
			rs := bootdata.RoleSecrets{Files: files}
			if r.Deploy != nil {
				rs.AWSIAMRole = r.Deploy.AWSIAMRole
			}
			roles[r.Name] = rs
		}
	}
	if len(roles) == 0 || f.Vault == nil {
		return nil
	}
	return &credentials{fleet: f, roles: roles}
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

func (c *credentials) issuer() (*bootdata.Issuer, error) {
	c.once.Do(func() {
		cfg, ok := c.fleet.Vault.Config.(*vault.Config)
		if !ok {
			c.err = fmt.Errorf("vault block: unexpected config %T", c.fleet.Vault.Config)
			return
		}
		b, err := vault.New(cfg)
		if err != nil {
			c.err = err
			return
		}
		addr, from := instanceVaultRoute(c.fleet, cfg.Address)
		c.iss = &bootdata.Issuer{Broker: b, Addr: addr, Roles: c.roles, BoundCIDRs: from, IAMServerID: cfg.AWSIAMServerID}
	})
	return c.iss, c.err
}

func (c *credentials) Wants(role string) bool { _, ok := c.roles[role]; return ok }

func (c *credentials) Issue(ctx context.Context, role, instance, image string) ([]byte, string, error) {
	iss, err := c.issuer()
	if err != nil {
		return nil, "", err
	}
	return iss.Issue(ctx, role, instance, image)
}

func (c *credentials) Revoke(ctx context.Context, role, accessor string) error {
	iss, err := c.issuer()
	if err != nil {
		return err
	}
	return iss.Revoke(ctx, role, accessor)
}

// instanceVaultRoute is Vault's address as the instances see it, and, when known, the networks their
// connections reach Vault from. A lab VM (qemu user networking) reaches this machine's loopback
// through its gateway, 10.0.2.2, and qemu makes those connections from the loopback address itself.
func instanceVaultRoute(f *fleet.Fleet, addr string) (string, []netip.Prefix) {
	u, err := url.Parse(addr)
	if err != nil {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return addr, nil
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		for _, c := range f.Compute {
			if _, lab := c.Config.(*qemu.Config); lab {
				u.Host = net.JoinHostPort("10.0.2.2", port)
				return u.String(), []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			}
		}
	}
	return addr, nil
}
