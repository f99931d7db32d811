package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// Volumes live under stateDir/lab next to the instances:
//
//	volumes/<id>.qcow2     the volume's data
//	volumes/<id>.json      its volumeRecord, written atomically
//	snapshots/<id>.qcow2   a snapshot: a standalone copy of a volume
//	snapshots/<id>.json    its snapshotRecord
//
// IDs are derived from tokens, so every process finds the volume of a token
// by name. Changes take the lab lock, the one Launch and Terminate take, so
// a volume's holder and the instance's life never race.
//
// AttachVolume hot-plugs the qcow2 into the running VM through QMP
// (blockdev-add, then device_add of a virtio-blk-pci whose serial is the
// volume's ID, so the guest finds it at /dev/disk/by-id/virtio-<id>).
// DetachVolume unplugs it the same way, which needs the guest to let go of
// the PCI device (ACPI hot-unplug): a VM whose firmware never boots an OS
// keeps a hot-plugged volume until it is terminated.
//
// A VM that is terminated, stopped or dies holds no volume any more: the
// record keeps the holder's PID, and a holder whose qemu is not that PID is
// ignored. A VM started again (Start) re-attaches nothing by itself: the
// caller attaches the volume again.
type volumeRecord struct {
	ID      string            `json:"id"`
	Token   string            `json:"token"`
	Name    string            `json:"name"`
	SizeGiB int               `json:"size_gib"`
	Labels  map[string]string `json:"labels"`
	Created time.Time         `json:"created"`
	// Holder is the instance the volume is attached to, set before the QMP
	// calls that plug it in and cleared after those that unplug it, so a
	// crash in between leaves a record that names where to look.
	Holder    string `json:"holder,omitempty"`
	HolderPID int    `json:"holder_pid,omitempty"`
	// Deleted is set by DeleteVolume, which keeps the record so the token
	// is not used for a second volume.
	Deleted time.Time `json:"deleted,omitzero"`
}

type snapshotRecord struct {
	ID      string            `json:"id"`
	Token   string            `json:"token"`
	Volume  string            `json:"volume"`
	SizeGiB int               `json:"size_gib"`
	Labels  map[string]string `json:"labels"`
	Created time.Time         `json:"created"`
}

func derivedID(prefix, kind, token string) string {
	h := sha256.Sum256([]byte("drover qemu " + kind + "\x00" + token))
	return prefix + hex.EncodeToString(h[:6])
}

func validVolumeID(prefix, id string) bool {
	return strings.HasPrefix(id, prefix) && len(id) == len(prefix)+12 && !strings.ContainsAny(id, "/.")
}

func (p *Provider) volumesDir() string   { return filepath.Join(p.labDir(), "volumes") }
func (p *Provider) snapshotsDir() string { return filepath.Join(p.labDir(), "snapshots") }

// VolumePath is the qcow2 file of volume id, for tests that read or write
// a detached volume's data as a guest would (qemu-io).
func (p *Provider) VolumePath(id string) string { return filepath.Join(p.volumesDir(), id+".qcow2") }

func (p *Provider) snapshotPath(id string) string {
	return filepath.Join(p.snapshotsDir(), id+".qcow2")
}

// readJSON reads path into v; a missing file wraps fs.ErrNotExist.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("qemu: %s: %w", path, err)
	}
	return nil
}

// writeJSON replaces path atomically, so readers without the lock never see
// half a record.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("qemu: %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// volumeRecord reads the live record of id, or an error wrapping
// compute.ErrNotFound.
func (p *Provider) volumeRecord(id string) (*volumeRecord, error) {
	var v volumeRecord
	err := fs.ErrNotExist
	if validVolumeID("vol-", id) {
		err = readJSON(filepath.Join(p.volumesDir(), id+".json"), &v)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && !v.Deleted.IsZero()):
		return nil, fmt.Errorf("qemu: volume %q: %w", id, compute.ErrNotFound)
	case err != nil:
		return nil, err
	}
	return &v, nil
}

func (p *Provider) writeVolume(v *volumeRecord) error {
	return writeJSON(filepath.Join(p.volumesDir(), v.ID+".json"), v)
}

// holder returns the instance that has v now and its record: "" when the
// recorded holder was terminated, stopped or died, or runs another qemu
// than the one the volume was plugged into.
func (p *Provider) holder(v *volumeRecord) (string, *record) {
	if v.Holder == "" {
		return "", nil
	}
	r, err := p.record(v.Holder)
	if err != nil || !r.Terminated.IsZero() || r.Stopped || r.PID != v.HolderPID || !running(r.PID, p.instanceDir(r.ID)) {
		return "", nil
	}
	return v.Holder, r
}

func (p *Provider) volume(v *volumeRecord) compute.Volume {
	// The guest path is the volume's serial, known before any attach: a green instance's
	// user-data names it before the handoff attaches the volume.
	out := compute.Volume{ID: v.ID, Name: v.Name, SizeGiB: v.SizeGiB, Labels: maps.Clone(v.Labels), Created: v.Created, GuestPath: guestPath(v.ID)}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if h, _ := p.holder(v); h != "" {
		out.AttachedTo = h
	}
	return out
}

// guestPath is where udev links a virtio disk by its serial; the serial is
// the volume ID (16 characters, within virtio-blk's 20).
func guestPath(id string) string { return "/dev/disk/by-id/virtio-" + id }

func qemuImg(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu: qemu-img %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CreateVolume implements compute.Volumes: a sparse qcow2 file made by
// qemu-img. The file is made under a temporary name and the record written
// after it, so a crash leaves at most a temporary file that a retry
// replaces. A token whose volume was deleted is refused (ErrNotFound).
func (p *Provider) CreateVolume(ctx context.Context, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(false); err != nil {
		return compute.Volume{}, err
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return compute.Volume{}, err
	}
	defer unlock()
	return p.newVolume(ctx, spec, func(tmp string) error {
		return qemuImg(ctx, "create", "-q", "-f", "qcow2", tmp, strconv.Itoa(spec.SizeGiB)+"G")
	})
}

// newVolume returns the volume of spec.Token, making it with fill when there
// is none. Called with the lab lock held.
func (p *Provider) newVolume(ctx context.Context, spec compute.VolumeSpec, fill func(tmp string) error) (compute.Volume, error) {
	id := derivedID("vol-", "volume", spec.Token)
	var v volumeRecord
	err := readJSON(filepath.Join(p.volumesDir(), id+".json"), &v)
	switch {
	case err == nil && !v.Deleted.IsZero():
		return compute.Volume{}, fmt.Errorf("qemu: volume token %q: its volume %s was deleted on %s: %w",
			spec.Token, id, v.Deleted.Format(time.RFC3339), compute.ErrNotFound)
	case err == nil:
		return p.volume(&v), nil
	case !errors.Is(err, fs.ErrNotExist):
		return compute.Volume{}, err
	}
	if err := os.MkdirAll(p.volumesDir(), 0o755); err != nil {
		return compute.Volume{}, fmt.Errorf("qemu: %w", err)
	}
	tmp := p.VolumePath(id) + ".tmp"
	os.Remove(tmp)
	if err := fill(tmp); err != nil {
		os.Remove(tmp)
		return compute.Volume{}, err
	}
	if err := os.Rename(tmp, p.VolumePath(id)); err != nil {
		return compute.Volume{}, fmt.Errorf("qemu: %w", err)
	}
	v = volumeRecord{ID: id, Token: spec.Token, Name: spec.Name, SizeGiB: spec.SizeGiB,
		Labels: maps.Clone(spec.Labels), Created: time.Now().UTC()}
	if err := p.writeVolume(&v); err != nil {
		return compute.Volume{}, err
	}
	return p.volume(&v), nil
}

// Volumes implements compute.Volumes. It reads the records without the lab
// lock.
func (p *Provider) Volumes(ctx context.Context, sel compute.Selector) ([]compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qemu: %w", context.Cause(ctx))
	}
	paths, _ := filepath.Glob(filepath.Join(p.volumesDir(), "vol-*.json"))
	var out []compute.Volume
	for _, path := range paths {
		var v volumeRecord
		if err := readJSON(path, &v); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		if v.Deleted.IsZero() && sel.Matches(v.Labels) {
			out = append(out, p.volume(&v))
		}
	}
	return out, nil
}

// DeleteVolume implements compute.Volumes. It removes the data and keeps the
// record, marked deleted, for the token.
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	v, err := p.volumeRecord(id)
	if errors.Is(err, compute.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if h, _ := p.holder(v); h != "" {
		return fmt.Errorf("qemu: deleting volume %s: attached to %s (detach it first): %w", id, h, compute.ErrVolumeInUse)
	}
	if err := os.Remove(p.VolumePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("qemu: deleting volume %s: %w", id, err)
	}
	v.Deleted, v.Holder, v.HolderPID = time.Now().UTC(), "", 0
	return p.writeVolume(v)
}

// releaseVolumes clears the holder of every volume attached to instance,
// whose VM is gone (Terminate, Stop). Called with the lab lock held.
func (p *Provider) releaseVolumes(instance string) error {
	paths, _ := filepath.Glob(filepath.Join(p.volumesDir(), "vol-*.json"))
	for _, path := range paths {
		var v volumeRecord
		if err := readJSON(path, &v); err != nil || v.Holder != instance {
			continue
		}
		v.Holder, v.HolderPID = "", 0
		if err := p.writeVolume(&v); err != nil {
			return err
		}
	}
	return nil
}
