package compute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Volumes is implemented by providers that keep data apart from instances:
// a block device created once for a role, attached to one instance at a
// time, that outlives every instance it was attached to (the lab's qcow2
// files hot-plugged through QMP, EBS volumes, Vultr block storage,
// DigitalOcean volumes). The handoff strategy moves a role's volume from
// blue to green with it; images stay stateless.
//
// A volume is never attached to two instances: AttachVolume refuses a
// volume attached elsewhere (ErrVolumeInUse), and DetachVolume returns only
// once the platform confirms the detach, so a caller that attaches after a
// successful detach never makes two writers.
//
// Implementations are safe for concurrent use, and those whose state
// outlives the process are safe across processes too. Every method honours
// ctx: a context done before the call has any effect makes it fail with an
// error wrapping ctx.Err() and change nothing. Every method is idempotent,
// so a controller killed mid-call retries it: what a partial failure leaves
// behind is then finished or reported by the retry.
type Volumes interface {
	// CreateVolume makes a blank volume. It is idempotent by spec.Token:
	// creating the same token again returns the first call's volume, also
	// after a crash between the platform's create and the answer.
	CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error)

	// Volumes lists the volumes whose labels include sel (every volume for
	// an empty sel), deleted ones excluded.
	Volumes(ctx context.Context, sel Selector) ([]Volume, error)

	// AttachVolume attaches volume id to instance and returns it once the
	// platform reports it attached (the guest may still have to notice the
	// device: it finds it by Volume.GuestPath). Attaching it to the
	// instance that has it already does nothing. A volume attached to
	// another instance is refused with an error wrapping ErrVolumeInUse;
	// an unknown volume or instance wraps ErrNotFound.
	AttachVolume(ctx context.Context, id, instance string) (Volume, error)

	// DetachVolume detaches volume id from whatever instance has it and
	// returns once the platform reports it detached. A volume attached
	// nowhere is nil. The caller stops the guest's writers first (the
	// handoff strategy stops the role's services): a platform detach of a
	// mounted filesystem is a power cut for it.
	DetachVolume(ctx context.Context, id string) error

	// SnapshotVolume takes a point-in-time copy of volume id, idempotent
	// by token, and returns it once the platform has it (its data may still
	// be copying in the background where the platform allows it, as EBS
	// does: State says so). A provider that cannot copy a volume under a
	// running guest refuses an attached one with an error wrapping
	// ErrVolumeInUse (the lab does); the caller detaches it first.
	SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (VolumeSnapshot, error)

	// VolumeSnapshots lists the snapshots whose labels include sel.
	VolumeSnapshots(ctx context.Context, sel Selector) ([]VolumeSnapshot, error)

	// RestoreVolume makes a new volume holding snapshot's data, idempotent
	// by spec.Token; spec.SizeGiB 0 means the snapshot's size, and a size
	// below it is refused.
	RestoreVolume(ctx context.Context, snapshot string, spec VolumeSpec) (Volume, error)

	// DeleteVolume deletes volume id and its data; nil when it is gone. A
	// volume attached to an instance is refused (ErrVolumeInUse).
	DeleteVolume(ctx context.Context, id string) error

	// DeleteVolumeSnapshot deletes a snapshot; nil when it is gone.
	DeleteVolumeSnapshot(ctx context.Context, id string) error
}

// ErrVolumeInUse means the volume is attached to an instance, and the call
// would need it attached nowhere (or to the instance asked about).
var ErrVolumeInUse = errors.New("compute: volume attached to another instance")

// VolumeSpec is a volume to create.
type VolumeSpec struct {
	// Token makes CreateVolume and RestoreVolume idempotent (a tag or name
	// where the platform has no client token).
	Token string
	// Name is for people; it need not be unique.
	Name string
	// SizeGiB is the size in GiB (at least 1).
	SizeGiB int
	// Labels find the volume again: role and volume name, as the rollout
	// sets them.
	Labels map[string]string
}

// Validate checks what every provider requires of a VolumeSpec. restore
// allows SizeGiB 0 (the snapshot's size).
func (s VolumeSpec) Validate(restore bool) error {
	switch {
	case s.Token == "":
		return fmt.Errorf("compute: volume %q: empty token", s.Name)
	case s.SizeGiB < 0 || (s.SizeGiB == 0 && !restore):
		return fmt.Errorf("compute: volume %q: size %d GiB: want at least 1", s.Name, s.SizeGiB)
	case s.SizeGiB > 16384:
		return fmt.Errorf("compute: volume %q: size %d GiB: at most 16384", s.Name, s.SizeGiB)
	}
	for k := range s.Labels {
		if k == "" {
			return fmt.Errorf("compute: volume %q: empty label name", s.Name)
		}
	}
	return nil
}

// Clone returns a deep copy.
func (s VolumeSpec) Clone() VolumeSpec {
	s.Labels = maps.Clone(s.Labels)
	return s
}

// Volume is a volume as its provider reports it.
type Volume struct {
	ID      string
	Name    string
	SizeGiB int
	Labels  map[string]string
	// AttachedTo is the instance that has the volume, "" when none has.
	AttachedTo string
	// GuestPath is where the guest finds the volume whatever order devices
	// come in: a /dev/disk/by-id path made of the volume's serial (the
	// lab's virtio-blk serial, EBS's NVMe serial of the volume ID). It is
	// reported from the volume's creation on, attached or not: the handoff
	// strategy names it in a new instance's user-data before it attaches
	// the volume.
	GuestPath string
	Created   time.Time
}

// VolumeSnapshot is a snapshot of a volume.
type VolumeSnapshot struct {
	ID       string
	VolumeID string // the volume it was taken of
	SizeGiB  int
	Labels   map[string]string
	// State is "completed" when the data is all there, "pending" while the
	// platform still copies it (a restore from it may then wait or fail,
	// as the platform does).
	State   string
	Created time.Time
}

// VolumeLabeler is implemented by Volumes providers that can change a
// volume's labels after it was made. A restore needs it: the restored
// volume takes the role's labels and the volume it replaces gives them up,
// so that never two volumes carry them.
//
// SetVolumeLabels replaces volume id's labels with labels (attached or not)
// and returns the volume. It is idempotent; an unknown volume wraps
// ErrNotFound.
type VolumeLabeler interface {
	SetVolumeLabels(ctx context.Context, id string, labels map[string]string) (Volume, error)
}

// UserDataEditor is implemented by providers that can change the user-data
// of a stopped instance, which it reads again at its next start. A restore
// needs it where a volume's guest path is made of the volume's ID (the lab,
// EBS): the instance's user-data must name the restored volume's path.
//
// EditUserData replaces instance's user-data with what edit returns, given
// the current one (nil when it has none). It refuses a running instance
// (ErrInstanceRunning) and wraps ErrNotFound for an unknown one. It is
// idempotent when edit is.
type UserDataEditor interface {
	EditUserData(ctx context.Context, instance string, edit func([]byte) ([]byte, error)) error
}

// ErrInstanceRunning means the call needs the instance stopped.
var ErrInstanceRunning = errors.New("compute: instance is running")
