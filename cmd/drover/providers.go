package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/store"
)

// providers opens the fleet's provider blocks on first use, each once, through the registry's
// factories. This is wiring, so it lives in cmd/; nothing here knows a provider type: what one type
// needs that another does not is an optional interface of its kind package.
type providers struct {
	reg      *all.Registry
	fleet    *fleet.Fleet
	stateDir string
	env      config.LookupEnv

	mu     sync.Mutex
	opened map[string]*openedBlock // by "kind/name"
}

// openedBlock is one block's provider, opened once. Each block has its own lock, since opening one
// may open another (an ip block opens its compute block).
type openedBlock struct {
	mu   sync.Mutex
	prov any // nil until opened; a failed open is tried again by the next caller
}

func (a *app) newProviders(f *fleet.Fleet, stateDir string) *providers {
	return &providers{reg: a.registry(), fleet: f, stateDir: stateDir, env: a.env, opened: map[string]*openedBlock{}}
}

// open returns the provider of a block, opening it with make on first use. Opening holds the block's
// lock, so a block is never opened twice (a second qemu lab, a second Cloudflare zone lookup).
func open[P any](p *providers, kind, name string, make func(blk *fleet.Provider, env config.Env) (P, error)) (P, error) {
	key := kind + "/" + name
	p.mu.Lock()
	ob, ok := p.opened[key]
	if !ok {
		ob = &openedBlock{}
		p.opened[key] = ob
	}
	p.mu.Unlock()
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.prov != nil {
		return ob.prov.(P), nil
	}
	var zero P
	blk := p.fleet.Provider(kind, name)
	if blk == nil {
		return zero, fmt.Errorf("not declared in %s", p.fleet.Path)
	}
	prov, err := make(blk, p.blockEnv(name))
	if err != nil {
		return zero, err
	}
	ob.prov = prov
	return prov, nil
}

func (p *providers) blockEnv(name string) config.Env {
	env := config.Env{Name: name, StateDir: p.stateDir, Lookup: p.env}
	if p.fleet != nil {
		env.FleetDir = p.fleet.Dir
	}
	return env
}

// errNotAvailable is what opening a type that validate refuses would say, were it reached.
func errNotAvailable(kind, typ string) error {
	return fmt.Errorf("the %s provider type %q is not available yet", kind, typ)
}

// Compute returns the provider of a compute block.
func (p *providers) Compute(ctx context.Context, name string) (compute.Provider, error) {
	return open(p, fleet.KindCompute, name, func(blk *fleet.Provider, env config.Env) (compute.Provider, error) {
		f, ok := p.reg.Compute(blk.Type)
		if !ok || !f.Available() {
			return nil, errNotAvailable(blk.Kind, blk.Type)
		}
		return f.Open(ctx, blk.Config, env)
	})
}

// IP returns the provider of an ip block and the failover address it moves, opened on the provider
// of the compute block it names.
func (p *providers) IP(ctx context.Context, name string) (ip.Provider, netip.Addr, error) {
	prov, err := open(p, fleet.KindIP, name, func(blk *fleet.Provider, env config.Env) (ip.Provider, error) {
		f, ok := p.reg.IP(blk.Type)
		if !ok || !f.Available() {
			return nil, errNotAvailable(blk.Kind, blk.Type)
		}
		on, err := p.Compute(ctx, blk.Compute)
		if err != nil {
			return nil, fmt.Errorf("its compute %q: %w", blk.Compute, err)
		}
		return f.Open(ctx, blk.Config, env, on)
	})
	if err != nil {
		return nil, netip.Addr{}, err
	}
	a, ok := prov.(ip.Addresser)
	if !ok {
		return nil, netip.Addr{}, fmt.Errorf("the %T provider names no address", prov)
	}
	return prov, a.Address(), nil
}

// DNS returns the provider of a dns block.
func (p *providers) DNS(ctx context.Context, name string) (dns.Provider, error) {
	return open(p, fleet.KindDNS, name, func(blk *fleet.Provider, env config.Env) (dns.Provider, error) {
		f, ok := p.reg.DNS(blk.Type)
		if !ok || !f.Available() {
			return nil, errNotAvailable(blk.Kind, blk.Type)
		}
		return f.Open(ctx, blk.Config, env)
	})
}

// Secrets returns the broker of the fleet's vault block.
func (p *providers) Secrets(ctx context.Context) (secrets.Broker, error) {
	if p.fleet.Vault == nil {
		return nil, errors.New("the fleet has no vault block")
	}
	return open(p, fleet.KindSecrets, p.fleet.Vault.Name, func(blk *fleet.Provider, env config.Env) (secrets.Broker, error) {
		return p.openSecrets(ctx, blk.Type, blk.Config, env)
	})
}

func (p *providers) openSecrets(ctx context.Context, typ string, cfg any, env config.Env) (secrets.Broker, error) {
	f, ok := p.reg.Secrets(typ)
	if !ok || !f.Available() {
		return nil, errNotAvailable(fleet.KindSecrets, typ)
	}
	return f.Open(ctx, cfg, env)
}

// openStore opens the state store: the fleet's store block, else the default store type with its
// defaults (state.db in the state directory). f may be nil for commands that read only the state
// directory. The caller closes it.
func (a *app) openStore(ctx context.Context, f *fleet.Fleet, stateDir string) (store.Store, error) {
	reg := a.registry()
	typ, name := reg.DefaultStore(), reg.DefaultStore()
	var cfg any
	if f != nil && f.Store != nil {
		typ, name, cfg = f.Store.Type, f.Store.Name, f.Store.Config
	} else {
		var err error
		if cfg, _, err = reg.NewConfig(fleet.KindStore, typ); err != nil {
			return nil, err
		}
	}
	fac, ok := reg.Store(typ)
	if !ok || !fac.Available() {
		return nil, errNotAvailable(fleet.KindStore, typ)
	}
	env := config.Env{Name: name, StateDir: stateDir, Lookup: a.env}
	if f != nil {
		env.FleetDir = f.Dir
	}
	return fac.Open(ctx, cfg, env)
}
