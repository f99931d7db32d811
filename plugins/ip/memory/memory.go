// Package memory is an in-memory ip.Provider for tests of code that moves
// failover addresses, such as the rollout controller. Paired with a compute
// provider, it knows which instances exist and, like a real failover IP,
// lets an address go when its holder is terminated.
package memory

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/ip"
)

var _ ip.Provider = (*Provider)(nil)

// Provider is an in-memory ip.Provider, safe for concurrent use.
type Provider struct {
	instances compute.Provider

	mu      sync.Mutex
	holders map[netip.Addr]string
}

// New returns a provider without assignments. With instances nil, any
// non-empty instance ID is accepted and never goes away; otherwise an ID
// must be an instance of instances that is not terminated.
func New(instances compute.Provider) *Provider {
	return &Provider{instances: instances, holders: make(map[netip.Addr]string)}
}

// Holder implements ip.Provider.
func (p *Provider) Holder(ctx context.Context, addr netip.Addr) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("memory: %w", err)
	}
	if !addr.IsValid() {
		return "", fmt.Errorf("memory: invalid address %v", addr)
	}
	p.mu.Lock()
	id := p.holders[addr]
	p.mu.Unlock()
	if id == "" {
		return "", nil
	}
	ok, err := p.exists(ctx, id)
	if err != nil || !ok {
		return "", err
	}
	return id, nil
}

// Assign implements ip.Provider.
func (p *Provider) Assign(ctx context.Context, addr netip.Addr, instanceID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if !addr.IsValid() {
		return fmt.Errorf("memory: invalid address %v", addr)
	}
	if instanceID == "" {
		return fmt.Errorf("memory: assigning %s: empty instance ID", addr)
	}
	ok, err := p.exists(ctx, instanceID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("memory: assigning %s to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	}
	p.mu.Lock()
	p.holders[addr] = instanceID
	p.mu.Unlock()
	return nil
}

// exists reports whether id is a live instance of p.instances.
func (p *Provider) exists(ctx context.Context, id string) (bool, error) {
	if p.instances == nil {
		return true, nil
	}
	all, err := p.instances.Instances(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("memory: %w", err)
	}
	for _, in := range all {
		if in.ID == id {
			return in.State != compute.Terminated, nil
		}
	}
	return false, nil
}
