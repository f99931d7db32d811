// Package memory is an in-memory compute.Provider for tests of code that
// drives providers, such as the rollout controller. Its instances are
// records, not machines; they live as long as the Provider value.
package memory

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.Provider = (*Provider)(nil)
	_ compute.Stopper  = (*Provider)(nil)
)

// Provider is an in-memory compute.Provider, safe for concurrent use. The
// zero value is not usable; call New.
type Provider struct {
	mu        sync.Mutex
	seq       int                          // instances launched so far
	instances map[string]*compute.Instance // live or dead, by ID
	tokens    map[string]string            // token -> ID, kept after Terminate
	gone      map[string]compute.Instance  // terminated instances, by ID
	userData  map[string][]byte            // by ID, as launched or edited
	volumeState
}

// New returns a provider without instances.
func New() *Provider {
	return &Provider{
		instances: make(map[string]*compute.Instance),
		tokens:    make(map[string]string),
		gone:      make(map[string]compute.Instance),
	}
}

func (p *Provider) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	p.mu.Lock()
	return nil
}

// Launch implements compute.Provider. New instances are Running at once and
// get addresses 10.0.0.2, 10.0.0.3, ... in launch order.
func (p *Provider) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	if err := spec.Validate(); err != nil {
		return compute.Instance{}, err
	}
	if err := spec.RefuseCloudRole("memory"); err != nil {
		return compute.Instance{}, err
	}
	if err := p.lock(ctx); err != nil {
		return compute.Instance{}, err
	}
	defer p.mu.Unlock()
	if id, ok := p.tokens[spec.Token]; ok {
		if in, ok := p.instances[id]; ok {
			return in.Clone(), nil
		}
		return p.gone[id].Clone(), nil
	}
	p.seq++
	n := p.seq + 1
	spec = spec.Clone()
	in := &compute.Instance{
		ID:      fmt.Sprintf("mem-%d", p.seq),
		Name:    spec.Name,
		Labels:  spec.Labels,
		State:   compute.Running,
		Address: netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}),
		Ports:   spec.Ports,
		Created: time.Now(),
	}
	if in.Labels == nil {
		in.Labels = map[string]string{}
	}
	p.instances[in.ID] = in
	p.tokens[spec.Token] = in.ID
	if p.userData == nil {
		p.userData = map[string][]byte{}
	}
	p.userData[in.ID] = spec.UserData
	return in.Clone(), nil
}

// Instances implements compute.Provider, sorted by ID.
func (p *Provider) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	if err := p.lock(ctx); err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	var out []compute.Instance
	for _, in := range p.instances {
		if sel.Matches(in.Labels) {
			c := in.Clone()
			if c.State == compute.Stopped {
				// As EC2 does with a public address: a stopped instance has none, and gets one
				// again when it starts, so callers must read an instance again after a start.
				c.Address = netip.Addr{}
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Terminate implements compute.Provider.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	if in, ok := p.instances[id]; ok {
		in.State = compute.Terminated
		p.gone[id] = in.Clone()
		delete(p.instances, id)
		p.detachFrom(id)
	}
	return nil
}

// Stop implements compute.Stopper.
func (p *Provider) Stop(ctx context.Context, id string) error {
	return p.setState(ctx, id, compute.Stopped)
}

// Start implements compute.Stopper.
func (p *Provider) Start(ctx context.Context, id string) error {
	return p.setState(ctx, id, compute.Running)
}

func (p *Provider) setState(ctx context.Context, id string, s compute.State) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	in, ok := p.instances[id]
	if !ok || in.State == compute.Terminated {
		return fmt.Errorf("memory: instance %q: %w", id, compute.ErrNotFound)
	}
	in.State = s
	return nil
}

// Kill makes an instance die on its own, the way a crashed VM does: it stays
// listed as Terminated until Terminate, and its volumes are detached. It is for tests of code that must
// notice dead instances.
func (p *Provider) Kill(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in, ok := p.instances[id]; ok {
		in.State = compute.Terminated
		p.detachFrom(id) // a dead VM holds no volume, as the lab's records say
	}
}
