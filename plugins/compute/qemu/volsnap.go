package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// SnapshotVolume implements compute.Volumes: a standalone qcow2 copy made
// by qemu-img convert, State "completed". The lab refuses an attached
// volume (ErrVolumeInUse): qemu holds its file open and locked, and a copy
// under a running guest would not be point-in-time anyway. The copy is made
// under a temporary name and the record written after it, so a crash leaves
// at most a temporary file that a retry replaces.
func (p *Provider) SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (compute.VolumeSnapshot, error) {
	if token == "" {
		return compute.VolumeSnapshot{}, fmt.Errorf("qemu: snapshot of volume %q: empty token", id)
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return compute.VolumeSnapshot{}, err
	}
	defer unlock()
	sid := derivedID("snap-", "snapshot", token)
	var s snapshotRecord
	err = readJSON(filepath.Join(p.snapshotsDir(), sid+".json"), &s)
	switch {
	case err == nil:
		return snapshotOf(&s), nil
	case !errors.Is(err, fs.ErrNotExist):
		return compute.VolumeSnapshot{}, err
	}
	v, err := p.volumeRecord(id)
	if err != nil {
		return compute.VolumeSnapshot{}, err
	}
	if h, _ := p.holder(v); h != "" {
		return compute.VolumeSnapshot{}, fmt.Errorf("qemu: snapshot of volume %s: attached to %s: %w: %w", id, h, errSnapshotAttached, compute.ErrVolumeInUse)
	}
	if err := os.MkdirAll(p.snapshotsDir(), 0o755); err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("qemu: %w", err)
	}
	tmp := p.snapshotPath(sid) + ".tmp"
	if err := qemuImg(ctx, "convert", "-f", "qcow2", "-O", "qcow2", p.VolumePath(id), tmp); err != nil {
		os.Remove(tmp)
		return compute.VolumeSnapshot{}, err
	}
	if err := os.Rename(tmp, p.snapshotPath(sid)); err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("qemu: %w", err)
	}
	s = snapshotRecord{ID: sid, Token: token, Volume: id, SizeGiB: v.SizeGiB, Labels: maps.Clone(labels), Created: time.Now().UTC()}
	if err := writeJSON(filepath.Join(p.snapshotsDir(), sid+".json"), &s); err != nil {
		return compute.VolumeSnapshot{}, err
	}
	return snapshotOf(&s), nil
}

func snapshotOf(s *snapshotRecord) compute.VolumeSnapshot {
	l := maps.Clone(s.Labels)
	if l == nil {
		l = map[string]string{}
	}
	return compute.VolumeSnapshot{ID: s.ID, VolumeID: s.Volume, SizeGiB: s.SizeGiB, Labels: l, State: "completed", Created: s.Created}
}

// VolumeSnapshots implements compute.Volumes, reading the records without
// the lab lock.
func (p *Provider) VolumeSnapshots(ctx context.Context, sel compute.Selector) ([]compute.VolumeSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qemu: %w", context.Cause(ctx))
	}
	paths, _ := filepath.Glob(filepath.Join(p.snapshotsDir(), "snap-*.json"))
	var out []compute.VolumeSnapshot
	for _, path := range paths {
		var s snapshotRecord
		if err := readJSON(path, &s); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		if sel.Matches(s.Labels) {
			out = append(out, snapshotOf(&s))
		}
	}
	return out, nil
}

// RestoreVolume implements compute.Volumes: a new volume made by qemu-img
// convert of the snapshot, grown to spec.SizeGiB when that is larger.
func (p *Provider) RestoreVolume(ctx context.Context, snapshot string, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(true); err != nil {
		return compute.Volume{}, err
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return compute.Volume{}, err
	}
	defer unlock()
	if v, err := p.volumeRecord(derivedID("vol-", "volume", spec.Token)); err == nil {
		return p.volume(v), nil // restored already
	}
	var s snapshotRecord
	err = fs.ErrNotExist
	if validVolumeID("snap-", snapshot) {
		err = readJSON(filepath.Join(p.snapshotsDir(), snapshot+".json"), &s)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return compute.Volume{}, fmt.Errorf("qemu: restoring snapshot %q: %w", snapshot, compute.ErrNotFound)
	}
	if err != nil {
		return compute.Volume{}, err
	}
	switch {
	case spec.SizeGiB == 0:
		spec.SizeGiB = s.SizeGiB
	case spec.SizeGiB < s.SizeGiB:
		return compute.Volume{}, fmt.Errorf("qemu: restoring snapshot %s into %d GiB: want at least its %d GiB", snapshot, spec.SizeGiB, s.SizeGiB)
	}
	return p.newVolume(ctx, spec, func(tmp string) error {
		if err := qemuImg(ctx, "convert", "-f", "qcow2", "-O", "qcow2", p.snapshotPath(snapshot), tmp); err != nil {
			return err
		}
		if spec.SizeGiB == s.SizeGiB {
			return nil
		}
		return qemuImg(ctx, "resize", "-q", "-f", "qcow2", tmp, strconv.Itoa(spec.SizeGiB)+"G")
	})
}

// DeleteVolumeSnapshot implements compute.Volumes. The record goes first, so
// a crash leaves at most a file no listing shows.
func (p *Provider) DeleteVolumeSnapshot(ctx context.Context, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if !validVolumeID("snap-", id) {
		return nil
	}
	for _, path := range []string{filepath.Join(p.snapshotsDir(), id+".json"), p.snapshotPath(id)} {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("qemu: deleting snapshot %s: %w", id, err)
		}
	}
	return nil
}
