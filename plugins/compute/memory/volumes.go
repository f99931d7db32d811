package memory

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

var _ compute.Volumes = (*Provider)(nil)

// volume is a volume's record and its bytes (only those written by
// WriteMarker: the rest reads as zeros).
type volume struct {
	compute.Volume
	data []byte
}

type snapshot struct {
	compute.VolumeSnapshot
	data []byte
}

// volumeState is the Provider's volumes, guarded by Provider.mu.
type volumeState struct {
	volSeq    int
	volumes   map[string]*volume
	volTokens map[string]string // token -> volume ID, kept after DeleteVolume
	snapshots map[string]*snapshot
	snapToken map[string]string // token -> snapshot ID
}

func (p *Provider) initVolumes() {
	if p.volumes == nil {
		p.volumes = map[string]*volume{}
		p.volTokens = map[string]string{}
		p.snapshots = map[string]*snapshot{}
		p.snapToken = map[string]string{}
	}
}

func (v *volume) clone() compute.Volume {
	out := v.Volume
	out.Labels = maps.Clone(out.Labels)
	return out
}

func (sn *snapshot) clone() compute.VolumeSnapshot {
	out := sn.VolumeSnapshot
	out.Labels = maps.Clone(out.Labels)
	return out
}

// CreateVolume implements compute.Volumes. A volume created again with its
// token after DeleteVolume is not made again: the call fails with
// ErrNotFound, as the token names a deleted volume.
func (p *Provider) CreateVolume(ctx context.Context, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(false); err != nil {
		return compute.Volume{}, err
	}
	if err := p.lock(ctx); err != nil {
		return compute.Volume{}, err
	}
	defer p.mu.Unlock()
	return p.newVolume(spec, nil)
}

// newVolume is CreateVolume and RestoreVolume under p.mu.
func (p *Provider) newVolume(spec compute.VolumeSpec, data []byte) (compute.Volume, error) {
	p.initVolumes()
	if id, ok := p.volTokens[spec.Token]; ok {
		v, ok := p.volumes[id]
		if !ok {
			return compute.Volume{}, fmt.Errorf("memory: volume token %q: its volume %s was deleted: %w", spec.Token, id, compute.ErrNotFound)
		}
		return v.clone(), nil
	}
	p.volSeq++
	id := fmt.Sprintf("vol-%d", p.volSeq)
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	v := &volume{Volume: compute.Volume{
		ID: id, Name: spec.Name, SizeGiB: spec.SizeGiB, Labels: labels,
		GuestPath: "/dev/disk/by-id/virtio-" + id, Created: time.Now(),
	}, data: data}
	p.volumes[id] = v
	p.volTokens[spec.Token] = id
	return v.clone(), nil
}

// Volumes implements compute.Volumes, sorted by ID.
func (p *Provider) Volumes(ctx context.Context, sel compute.Selector) ([]compute.Volume, error) {
	if err := p.lock(ctx); err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	var out []compute.Volume
	for _, v := range p.volumes {
		if sel.Matches(v.Labels) {
			out = append(out, v.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (p *Provider) volume(id string) (*volume, error) {
	v, ok := p.volumes[id]
	if !ok {
		return nil, fmt.Errorf("memory: volume %q: %w", id, compute.ErrNotFound)
	}
	return v, nil
}

// AttachVolume implements compute.Volumes.
func (p *Provider) AttachVolume(ctx context.Context, id, instance string) (compute.Volume, error) {
	if err := p.lock(ctx); err != nil {
		return compute.Volume{}, err
	}
	defer p.mu.Unlock()
	v, err := p.volume(id)
	if err != nil {
		return compute.Volume{}, err
	}
	if in, ok := p.instances[instance]; !ok || in.State == compute.Terminated {
		return compute.Volume{}, fmt.Errorf("memory: attaching volume %s: instance %q: %w", id, instance, compute.ErrNotFound)
	}
	switch v.AttachedTo {
	case instance:
	case "":
		v.AttachedTo = instance
	default:
		return compute.Volume{}, fmt.Errorf("memory: attaching volume %s to %s: it is attached to %s: %w", id, instance, v.AttachedTo, compute.ErrVolumeInUse)
	}
	return v.clone(), nil
}

// DetachVolume implements compute.Volumes.
func (p *Provider) DetachVolume(ctx context.Context, id string) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	v, err := p.volume(id)
	if err != nil {
		return err
	}
	v.AttachedTo = ""
	return nil
}

// detachFrom detaches every volume of an instance that is gone, under p.mu.
func (p *Provider) detachFrom(instance string) {
	for _, v := range p.volumes {
		if v.AttachedTo == instance {
			v.AttachedTo = ""
		}
	}
}

// SnapshotVolume implements compute.Volumes. Snapshots are completed at
// once, attached volume or not.
func (p *Provider) SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (compute.VolumeSnapshot, error) {
	if token == "" {
		return compute.VolumeSnapshot{}, fmt.Errorf("memory: snapshot of volume %q: empty token", id)
	}
	if err := p.lock(ctx); err != nil {
		return compute.VolumeSnapshot{}, err
	}
	defer p.mu.Unlock()
	p.initVolumes()
	if sid, ok := p.snapToken[token]; ok {
		sn, ok := p.snapshots[sid]
		if !ok {
			return compute.VolumeSnapshot{}, fmt.Errorf("memory: snapshot token %q: its snapshot %s was deleted: %w", token, sid, compute.ErrNotFound)
		}
		return sn.clone(), nil
	}
	v, err := p.volume(id)
	if err != nil {
		return compute.VolumeSnapshot{}, err
	}
	p.volSeq++
	l := maps.Clone(labels)
	if l == nil {
		l = map[string]string{}
	}
	sn := &snapshot{VolumeSnapshot: compute.VolumeSnapshot{
		ID: fmt.Sprintf("snap-%d", p.volSeq), VolumeID: id, SizeGiB: v.SizeGiB,
		Labels: l, State: "completed", Created: time.Now(),
	}, data: append([]byte(nil), v.data...)}
	p.snapshots[sn.ID] = sn
	p.snapToken[token] = sn.ID
	return sn.clone(), nil
}

// VolumeSnapshots implements compute.Volumes, sorted by ID.
func (p *Provider) VolumeSnapshots(ctx context.Context, sel compute.Selector) ([]compute.VolumeSnapshot, error) {
	if err := p.lock(ctx); err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	var out []compute.VolumeSnapshot
	for _, sn := range p.snapshots {
		if sel.Matches(sn.Labels) {
			out = append(out, sn.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RestoreVolume implements compute.Volumes.
func (p *Provider) RestoreVolume(ctx context.Context, snapshotID string, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(true); err != nil {
		return compute.Volume{}, err
	}
	if err := p.lock(ctx); err != nil {
		return compute.Volume{}, err
	}
	defer p.mu.Unlock()
	if id, ok := p.volTokens[spec.Token]; ok {
		if v, ok := p.volumes[id]; ok {
			return v.clone(), nil
		}
	}
	sn, ok := p.snapshots[snapshotID]
	if !ok {
		return compute.Volume{}, fmt.Errorf("memory: restoring snapshot %q: %w", snapshotID, compute.ErrNotFound)
	}
	switch {
	case spec.SizeGiB == 0:
		spec.SizeGiB = sn.SizeGiB
	case spec.SizeGiB < sn.SizeGiB:
		return compute.Volume{}, fmt.Errorf("memory: restoring snapshot %s into %d GiB: want at least its %d GiB", snapshotID, spec.SizeGiB, sn.SizeGiB)
	}
	return p.newVolume(spec, append([]byte(nil), sn.data...))
}

// DeleteVolume implements compute.Volumes.
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	v, ok := p.volumes[id]
	if !ok {
		return nil
	}
	if v.AttachedTo != "" {
		return fmt.Errorf("memory: deleting volume %s: attached to %s: %w", id, v.AttachedTo, compute.ErrVolumeInUse)
	}
	delete(p.volumes, id)
	return nil
}

// DeleteVolumeSnapshot implements compute.Volumes.
func (p *Provider) DeleteVolumeSnapshot(ctx context.Context, id string) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	delete(p.snapshots, id)
	return nil
}

// WriteMarker writes data at the start of volume id, as a guest would on
// its block device. It is for tests (computetest.VolumesFixture).
func (p *Provider) WriteMarker(ctx context.Context, id string, data []byte) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	v, err := p.volume(id)
	if err != nil {
		return err
	}
	if len(v.data) < len(data) {
		v.data = append(v.data, make([]byte, len(data)-len(v.data))...)
	}
	copy(v.data, data)
	return nil
}

// ReadMarker reads the first n bytes of volume id (zeros where nothing was
// written).
func (p *Provider) ReadMarker(ctx context.Context, id string, n int) ([]byte, error) {
	if err := p.lock(ctx); err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	v, err := p.volume(id)
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	copy(out, v.data)
	return out, nil
}
