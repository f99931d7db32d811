package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/loopback"
	"github.com/drover-dev/drover/plugins/store/local"
)

// providers opens the fleet's provider blocks on first use. This is wiring, so it lives in cmd/:
// the fleet file names the blocks, plugins/all decoded their configs, and here each decoded config
// becomes a provider. Cloud providers join the switches as they land.
type providers struct {
	fleet    *fleet.Fleet
	stateDir string
	mu       sync.Mutex
	compute  map[string]compute.Provider
	// dnsServers are the servers to verify each opened dns provider's changes at.
	dnsServers map[dns.Provider][]string
}

func newProviders(f *fleet.Fleet, stateDir string) *providers {
	return &providers{fleet: f, stateDir: stateDir, compute: map[string]compute.Provider{}, dnsServers: map[dns.Provider][]string{}}
}

// Compute returns the provider of a compute block.
func (p *providers) Compute(_ context.Context, name string) (compute.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.compute[name]; ok {
		return c, nil
	}
	blk := p.fleet.Provider(fleet.KindCompute, name)
	if blk == nil {
		return nil, fmt.Errorf("compute %q is not declared in %s", name, p.fleet.Path)
	}
	var (
		c   compute.Provider
		err error
	)
	switch cfg := blk.Config.(type) {
	case *qemu.Config:
		c, err = qemu.New(cfg, p.stateDir)
	default:
		return nil, fmt.Errorf("compute %q: the %s provider cannot launch instances yet", name, blk.Type)
	}
	if err != nil {
		return nil, err
	}
	p.compute[name] = c
	return c, nil
}

// IP returns the provider of an ip block and its failover address. The lab's loopback address moves
// between the instances of the fleet's qemu compute block.
func (p *providers) IP(ctx context.Context, name string) (ip.Provider, netip.Addr, error) {
	blk := p.fleet.Provider(fleet.KindIP, name)
	if blk == nil {
		return nil, netip.Addr{}, fmt.Errorf("ip %q is not declared in %s", name, p.fleet.Path)
	}
	switch cfg := blk.Config.(type) {
	case *loopback.Config:
		lab, err := p.qemuLab(ctx)
		if err != nil {
			return nil, netip.Addr{}, fmt.Errorf("ip %q: %w", name, err)
		}
		lp, err := loopback.New(cfg, lab, p.stateDir)
		if err != nil {
			return nil, netip.Addr{}, err
		}
		return lp, lp.Address(), nil
	default:
		return nil, netip.Addr{}, fmt.Errorf("ip %q: the %s provider cannot move addresses yet", name, blk.Type)
	}
}

// qemuLab is the fleet's one qemu compute block, which a loopback failover address belongs to.
func (p *providers) qemuLab(ctx context.Context) (*qemu.Provider, error) {
	var names []string
	for _, c := range p.fleet.Compute {
		if c.Type == "qemu" {
			names = append(names, c.Name)
		}
	}
	if len(names) != 1 {
		return nil, fmt.Errorf("a loopback address needs exactly one qemu compute block, the fleet has %d", len(names))
	}
	c, err := p.Compute(ctx, names[0])
	if err != nil {
		return nil, err
	}
	return c.(*qemu.Provider), nil
}

// storeConfig is the local store's file: the store block's path, else state.db in the state directory.
func storeConfig(f *fleet.Fleet, stateDir string) local.Config {
	cfg := local.NewDefaultConfig(stateDir)
	if f != nil && f.Store != nil {
		if c, ok := f.Store.Config.(*local.Config); ok && c.Path != "" {
			cfg.Path = c.Path
			if !isAbs(cfg.Path) {
				cfg.Path = f.Dir + "/" + cfg.Path
			}
		}
	}
	return cfg
}
