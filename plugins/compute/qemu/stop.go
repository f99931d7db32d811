package qemu

import (
	"context"
	"fmt"
	"path/filepath"
)

// Stop implements compute.Stopper: it kills the VM like Terminate does but
// keeps its overlay, address and record, marked stopped. Its volumes are
// detached in their records, and Start does not attach them again: the
// caller does, as after a reboot on a cloud that forgets attachments.
func (p *Provider) Stop(ctx context.Context, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := p.record(id)
	if err != nil {
		return err
	}
	if r.Stopped {
		return nil
	}
	if err := kill(r.PID, p.instanceDir(id)); err != nil {
		return fmt.Errorf("qemu: stopping %s: %w", id, err)
	}
	if err := p.releaseVolumes(id); err != nil {
		return fmt.Errorf("qemu: stopping %s: %w", id, err)
	}
	r.Stopped, r.PID = true, 0
	return writeRecord(filepath.Join(p.instanceDir(id), recordFile), r)
}

// Start implements compute.Stopper: it boots a stopped VM again from its
// overlay, on its address. It also revives a VM that died on its own.
func (p *Provider) Start(ctx context.Context, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := p.record(id)
	if err != nil {
		return err
	}
	dir := p.instanceDir(id)
	if !r.Stopped && running(r.PID, dir) {
		return nil
	}
	accel, err := p.chooseAccel(ctx)
	if err != nil {
		return err
	}
	pid, err := p.start(ctx, r, accel)
	if err != nil {
		return err
	}
	r.Stopped, r.PID = false, pid
	if err := writeRecord(filepath.Join(dir, recordFile), r); err != nil {
		kill(pid, dir)
		return err
	}
	return nil
}
