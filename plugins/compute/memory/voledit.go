package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.VolumeLabeler  = (*Provider)(nil)
	_ compute.UserDataEditor = (*Provider)(nil)
)

// SetVolumeLabels implements compute.VolumeLabeler.
func (p *Provider) SetVolumeLabels(ctx context.Context, id string, labels map[string]string) (compute.Volume, error) {
	if err := p.lock(ctx); err != nil {
		return compute.Volume{}, err
	}
	defer p.mu.Unlock()
	p.initVolumes()
	v, err := p.volume(id)
	if err != nil {
		return compute.Volume{}, err
	}
	v.Labels = maps.Clone(labels)
	return v.clone(), nil
}

// EditUserData implements compute.UserDataEditor: a running (or pending)
// instance is refused.
func (p *Provider) EditUserData(ctx context.Context, instance string, edit func([]byte) ([]byte, error)) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	in, ok := p.instances[instance]
	if !ok || in.State == compute.Terminated {
		return fmt.Errorf("memory: instance %q: %w", instance, compute.ErrNotFound)
	}
	if in.State != compute.Stopped {
		return fmt.Errorf("memory: user-data of %s: %w (stop it first)", instance, compute.ErrInstanceRunning)
	}
	b, err := edit(slices.Clone(p.userData[instance]))
	if err != nil {
		return fmt.Errorf("memory: user-data of %s: %w", instance, err)
	}
	p.userData[instance] = slices.Clone(b)
	return nil
}

// UserData is instance's user-data as launched or last edited, for tests.
func (p *Provider) UserData(instance string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.userData[instance])
}
