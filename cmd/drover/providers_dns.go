package main

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
)

// DNS returns the provider of a dns block.
func (p *providers) DNS(_ context.Context, name string) (dns.Provider, error) {
	blk := p.fleet.Provider(fleet.KindDNS, name)
	if blk == nil {
		return nil, fmt.Errorf("dns %q is not declared in %s", name, p.fleet.Path)
	}
	switch cfg := blk.Config.(type) {
	case *rfc2136.Config:
		return rfc2136.New(cfg)
	default:
		return nil, fmt.Errorf("dns %q: the %s provider cannot change records yet", name, blk.Type)
	}
}
