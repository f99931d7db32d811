package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/cloudflare"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
	"github.com/drover-dev/drover/plugins/dns/route53"
	"github.com/drover-dev/drover/plugins/dns/verify"
	"github.com/drover-dev/drover/plugins/dns/zonefile"
)

// DNS returns the provider of a dns block, and remembers which servers to verify its changes at.
func (p *providers) DNS(ctx context.Context, name string) (dns.Provider, error) {
	blk := p.fleet.Provider(fleet.KindDNS, name)
	if blk == nil {
		return nil, fmt.Errorf("dns %q is not declared in %s", name, p.fleet.Path)
	}
	var (
		prov    dns.Provider
		servers []string
		err     error
	)
	switch cfg := blk.Config.(type) {
	case *rfc2136.Config:
		prov, err = rfc2136.New(cfg)
		// Without a list, the primary that takes the updates is the one server drover knows.
		servers = cfg.Nameservers
		if len(servers) == 0 {
			servers = []string{cfg.Server}
		}
	case *cloudflare.Config:
		// Cloudflare's servers are the zone's NS records, asked directly.
		prov, err = cloudflare.New(ctx, cfg)
	case *route53.Config:
		prov, err = route53.New(ctx, cfg)
	case *zonefile.Config:
		prov, err = zonefile.New(cfg, p.fleet.Dir)
		servers = cfg.Nameservers
	default:
		return nil, fmt.Errorf("dns %q: the %s provider cannot change records yet", name, blk.Type)
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.dnsServers[prov] = servers
	p.mu.Unlock()
	return prov, nil
}

// VerifyDNS waits until every authoritative server of the provider's zone serves want: the
// block's nameservers list when it has one, otherwise the zone's NS records looked up through this
// machine's resolver.
func (p *providers) VerifyDNS(ctx context.Context, prov dns.Provider, want dns.RecordSet, progress func(string, bool)) error {
	p.mu.Lock()
	servers := p.dnsServers[prov]
	p.mu.Unlock()
	if len(servers) == 0 {
		var err error
		if servers, err = verify.Nameservers(ctx, prov.Zone(), systemResolver()); err != nil {
			return err
		}
	}
	return verify.WaitServed(ctx, servers, want, 50*time.Millisecond, func(server string, ok bool, _ []string) {
		if progress != nil {
			progress(server, ok)
		}
	})
}

// systemResolver is the first nameserver of /etc/resolv.conf, else 127.0.0.1.
func systemResolver() string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return "127.0.0.1"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "nameserver" {
			return fields[1]
		}
	}
	return "127.0.0.1"
}
