package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.VolumeLabeler  = (*Provider)(nil)
	_ compute.UserDataEditor = (*Provider)(nil)
)

// SetVolumeLabels implements compute.VolumeLabeler: the record is rewritten
// atomically under the lab lock, attached or not.
func (p *Provider) SetVolumeLabels(ctx context.Context, id string, labels map[string]string) (compute.Volume, error) {
	for k := range labels {
		if k == "" {
			return compute.Volume{}, fmt.Errorf("qemu: labels of volume %s: empty label name", id)
		}
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return compute.Volume{}, err
	}
	defer unlock()
	v, err := p.volumeRecord(id)
	if err != nil {
		return compute.Volume{}, err
	}
	if !maps.Equal(v.Labels, labels) {
		v.Labels = maps.Clone(labels)
		if err := p.writeVolume(v); err != nil {
			return compute.Volume{}, err
		}
	}
	return p.volume(v), nil
}

// EditUserData implements compute.UserDataEditor: the instance's user-data
// file, which qemu hands to the guest through fw_cfg at every start, is
// replaced atomically while the VM is stopped (or dead). A running VM is
// refused: it would read the old one until its next start.
func (p *Provider) EditUserData(ctx context.Context, instance string, edit func([]byte) ([]byte, error)) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := p.record(instance)
	if err != nil {
		return err
	}
	if !r.Terminated.IsZero() {
		return fmt.Errorf("qemu: user-data of %s: terminated: %w", instance, compute.ErrNotFound)
	}
	if !r.Stopped && running(r.PID, p.instanceDir(instance)) {
		return fmt.Errorf("qemu: user-data of %s: %w (stop it first)", instance, compute.ErrInstanceRunning)
	}
	path := filepath.Join(p.instanceDir(instance), userFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("qemu: user-data of %s: %w", instance, err)
	}
	b, err := edit(old)
	if err != nil {
		return fmt.Errorf("qemu: user-data of %s: %w", instance, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("qemu: user-data of %s: %w", instance, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("qemu: user-data of %s: %w", instance, err)
	}
	return nil
}
