package rollout

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/store"
)

// A volume operation is a snapshot or a restore of a role's volume asked for by a person (drover
// volumes snapshot|restore), as opposed to those a rollout makes. It is persisted like a rollout:
// under volume-ops/<role>/<seq>, each step written before it is done, under the role's lock, so it
// never races a rollout, and a command killed at any point and run again finishes it. While one is
// unfinished, rollout commands of the role are refused (ErrVolumeOpPending): the cleanup they run
// first would move the volumes the operation is moving.

// Kinds of volume operation.
const (
	VolumeOpSnapshot = "snapshot"
	VolumeOpRestore  = "restore"
)

// States of a volume operation. running and reverting are unfinished; the others end it.
const (
	VolumeOpRunning   = "running"   // its steps are being done
	VolumeOpReverting = "reverting" // a restore whose instance failed its checks on the restored data: going back
	VolumeOpDone      = "done"
	VolumeOpReverted  = "reverted" // the restore was undone: the volume in service before serves again
	VolumeOpFailed    = "failed"   // it stopped with the instance failing its checks; nothing more will be done
)

// Labels drover sets on volumes and snapshots besides fleet, role and volume.
const (
	// LabelReplaced is on a volume a restore took out of service: the name of the role's volume it
	// was (it no longer has the volume label, so no rollout finds it). LabelRestoreOp names the
	// restore that replaced it.
	LabelReplaced  = "replaced-volume"
	LabelRestoreOp = "restore"
	// LabelRestoring is on a volume a restore made while it is not yet in service, and on one whose
	// restore was reverted: the name of the role's volume it was made for.
	LabelRestoring = "restored-volume"
	// Labels of a snapshot taken by hand: who took it, its name and description, and the operation.
	LabelTakenBy     = "taken-by"
	LabelSnapName    = "snapshot-name"
	LabelDescription = "description"
	LabelVolumeOp    = "volume-op"
)

// VolumeOpCrashPoints are the steps of a volume operation that DROVER_TEST_CRASH_AFTER may name:
// the command stops right after the step is written, before it is done.
var VolumeOpCrashPoints = []State{"volume-begin", "volume-create", "volume-stop", "volume-detach", "volume-snapshot",
	"volume-relabel", "volume-record", "volume-userdata", "volume-start", "volume-attach", "volume-revert"}

// ErrVolumeOpPending is wrapped by the refusal of a rollout command while a volume operation of the
// role is unfinished, and of a volume operation while another one is.
var ErrVolumeOpPending = errors.New("a volume operation is unfinished")

// ErrNoSuchSource is wrapped by the refusal of a restore whose source is neither a snapshot of the
// role's volume nor a volume a restore set aside; the error lists those there are.
var ErrNoSuchSource = errors.New("no such snapshot")

// ErrSnapshotNeedsStop is wrapped by the refusal of a snapshot of an attached volume by a provider
// that can only copy a detached one (the lab): the caller may ask for the instance to be stopped.
var ErrSnapshotNeedsStop = errors.New("the provider cannot snapshot a volume in use")

// VolumeOp is a volume operation as persisted (JSON under volume-ops/<role>/<seq>).
type VolumeOp struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // snapshot or restore
	Role   string `json:"role"`
	Volume string `json:"volume"` // the name of the role's volume
	Seq    int    `json:"seq"`
	Owner  string `json:"owner"`
	State  string `json:"state"`
	// Source is what a restore restores: a snapshot's ID, or the ID of a volume an earlier restore
	// replaced (put back as it is).
	Source string `json:"source,omitempty"`
	// Snapshot is the snapshot taken (kind snapshot), once the provider has it.
	Snapshot    string `json:"snapshot,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Stop asks a snapshot to stop the volume's instance for the copy (detached, then given back).
	Stop bool `json:"stop,omitempty"`
	// Instance holds the volume before and after the operation; "" when no instance had it.
	Instance string `json:"instance,omitempty"`
	// From is the volume in service when the operation began; To the one a restore puts in its place.
	From HandoffVolume  `json:"from"`
	To   *HandoffVolume `json:"to,omitempty"`
	// Step is the last step begun, as in HandoffProgress.
	Step    string       `json:"step,omitempty"`
	Steps   []Transition `json:"steps"`
	Error   string       `json:"error,omitempty"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`

	version uint64
}

// Unfinished reports whether the operation is still to be finished (by running it again).
func (op *VolumeOp) Unfinished() bool {
	return op.State == VolumeOpRunning || op.State == VolumeOpReverting
}

// Command is the drover command that runs op again, for people.
func (op *VolumeOp) Command() string {
	if op.Kind == VolumeOpRestore {
		return fmt.Sprintf("drover volumes restore %s %s %s", op.Role, op.Volume, op.Source)
	}
	cmd := fmt.Sprintf("drover volumes snapshot %s %s", op.Role, op.Volume)
	if op.Stop {
		cmd += " --stop"
	}
	return cmd
}

const volumeOpPrefix = "volume-ops/"

func volumeOpKey(role string, seq int) string {
	return fmt.Sprintf("%s%s/%08d", volumeOpPrefix, role, seq)
}

// loadVolumeOps reads every volume operation of a role, oldest first.
func loadVolumeOps(ctx context.Context, st store.Store, role string) ([]*VolumeOp, error) {
	items, err := st.List(ctx, volumeOpPrefix+role+"/")
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: listing volume operations: %w", role, err)
	}
	out := make([]*VolumeOp, 0, len(items))
	for _, it := range items {
		var op VolumeOp
		if err := json.Unmarshal(it.Value, &op); err != nil {
			return nil, fmt.Errorf("rollout: volume operation %q is not JSON: %w", it.Key, err)
		}
		op.version = it.Version
		out = append(out, &op)
	}
	slices.SortFunc(out, func(a, b *VolumeOp) int { return a.Seq - b.Seq })
	return out, nil
}

func saveVolumeOp(ctx context.Context, st store.Store, op *VolumeOp) error {
	b, err := json.MarshalIndent(op, "", "  ")
	if err != nil {
		return fmt.Errorf("rollout: role %q: encoding volume operation %s: %w", op.Role, op.ID, err)
	}
	v, err := st.Put(ctx, volumeOpKey(op.Role, op.Seq), b, op.version)
	if err != nil {
		return fmt.Errorf("rollout: role %q: saving volume operation %s: %w", op.Role, op.ID, err)
	}
	op.version = v
	return nil
}

// pendingOp is the role's unfinished volume operation, or nil.
func pendingOp(ops []*VolumeOp) *VolumeOp {
	for _, op := range ops {
		if op.Unfinished() {
			return op
		}
	}
	return nil
}

// VolumeOpPendingError refuses a command while a volume operation of the role is unfinished.
type VolumeOpPendingError struct{ Op *VolumeOp }

func (e *VolumeOpPendingError) Error() string {
	return fmt.Sprintf("rollout: role %q: %s %s of volume %s was interrupted at step %q (%s); finish it first with: %s",
		e.Op.Role, e.Op.Kind, e.Op.ID, e.Op.Volume, e.Op.Step, e.Op.State, e.Op.Command())
}

// Unwrap returns ErrVolumeOpPending.
func (e *VolumeOpPendingError) Unwrap() error { return ErrVolumeOpPending }

// VolumeOps is the role's volume operations, oldest first, as persisted.
func (c *Controller) VolumeOps(ctx context.Context, role string) ([]*VolumeOp, error) {
	if c.opts.Fleet.Role(role) == nil {
		return nil, fmt.Errorf("rollout: no role %q in %s", role, c.opts.Fleet.Path)
	}
	return loadVolumeOps(ctx, c.opts.Store, role)
}

// opStep writes op's next step (and applies mutate) before it is done, then passes the crash
// hook's point ("" for none).
func (s *session) opStep(ctx context.Context, op *VolumeOp, point State, step string, mutate func(*VolumeOp)) error {
	if mutate != nil {
		mutate(op)
	}
	if step != "" {
		op.Step = step
		op.Steps = append(op.Steps, Transition{State: State(op.State), At: s.c.now(), Note: step})
		if len(op.Steps) > 100 {
			op.Steps = op.Steps[len(op.Steps)-100:]
		}
		s.step(op.ID, "volumes", step)
	}
	op.Updated = s.c.now()
	if err := saveVolumeOp(ctx, s.c.opts.Store, op); err != nil {
		return err
	}
	if point == "" {
		return nil
	}
	return s.c.crashPoint(point)
}

// volumeOpCaps are the capabilities of the role's compute provider a volume operation needs:
// compute.Volumes always, a Stopper to stop the instance, and for a restore a VolumeLabeler and a
// UserDataEditor.
type volumeOpCaps struct {
	vols    compute.Volumes
	stop    compute.Stopper
	labels  compute.VolumeLabeler
	useData compute.UserDataEditor
}

func (s *session) opCaps(restore bool) (volumeOpCaps, error) {
	var c volumeOpCaps
	var ok bool
	if c.vols, ok = s.comp.(compute.Volumes); !ok {
		return c, fmt.Errorf("rollout: role %q: compute %q has no volumes (it does not implement compute.Volumes)", s.role.Name, s.dep.Compute)
	}
	c.stop, _ = s.comp.(compute.Stopper)
	c.labels, _ = s.comp.(compute.VolumeLabeler)
	c.useData, _ = s.comp.(compute.UserDataEditor)
	if !restore {
		return c, nil
	}
	var missing []string
	if c.stop == nil {
		missing = append(missing, "stop an instance (compute.Stopper)")
	}
	if c.labels == nil {
		missing = append(missing, "relabel a volume (compute.VolumeLabeler)")
	}
	if c.useData == nil {
		missing = append(missing, "change a stopped instance's user-data (compute.UserDataEditor)")
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("rollout: role %q: compute %q cannot %s, which a restore needs; restore by hand as the role's README says",
			s.role.Name, s.dep.Compute, strings.Join(missing, ", nor "))
	}
	return c, nil
}

// opTarget checks that volume is declared, that no rollout of the role is in flight, and finds the
// volume in service and the instance that should hold it (the live rollout's, "" before the first
// deploy or when it has none).
func (s *session) opTarget(ctx context.Context, vp compute.Volumes, cmd, volume string) (HandoffVolume, string, error) {
	if deployVolume(s.dep, volume) == nil {
		names := make([]string, len(s.dep.Volumes))
		for i, v := range s.dep.Volumes {
			names[i] = v.Name
		}
		return HandoffVolume{}, "", fmt.Errorf("rollout: role %q has no volume %q (its volumes: %s)", s.role.Name, volume, strings.Join(names, ", "))
	}
	if a := s.active(); a != nil {
		return HandoffVolume{}, "", fmt.Errorf("rollout: role %q: %s of volume %s refused: rollout %s is %s: %w",
			s.role.Name, cmd, volume, a.ID, a.State, ErrInProgress)
	}
	sel := s.volumeLabels(volume)
	got, err := vp.Volumes(ctx, sel)
	if err != nil {
		return HandoffVolume{}, "", fmt.Errorf("rollout: role %q: listing volume %s: %w", s.role.Name, volume, err)
	}
	switch {
	case len(got) == 0:
		return HandoffVolume{}, "", fmt.Errorf("rollout: role %q: no volume has labels %v: the role's first rollout creates it (%w)", s.role.Name, map[string]string(sel), compute.ErrNotFound)
	case len(got) > 1:
		return HandoffVolume{}, "", fmt.Errorf("rollout: role %q: %d volumes have labels %v (%s, ...), want one: find the one that holds the data and delete the others",
			s.role.Name, len(got), map[string]string(sel), got[0].ID)
	}
	v := got[0]
	instance := v.AttachedTo
	if l := s.live(); l != nil {
		ins, err := s.instancesOf(ctx, l, true)
		if err != nil {
			return HandoffVolume{}, "", err
		}
		if len(ins) > 0 {
			if instance != "" && instance != ins[0].ID {
				return HandoffVolume{}, "", fmt.Errorf("rollout: role %q: volume %s is on %s, not on %s of the live rollout %s: run drover rollout tick %s to put it back first",
					s.role.Name, v.ID, instance, ins[0].ID, l.ID, s.role.Name)
			}
			instance = ins[0].ID
		}
	}
	return HandoffVolume{Name: volume, ID: v.ID, GuestPath: v.GuestPath}, instance, nil
}

// newVolumeOp persists a new operation of the role, running, with its first step.
func (s *session) newVolumeOp(ctx context.Context, ops []*VolumeOp, op *VolumeOp) error {
	op.Seq = 1
	if n := len(ops); n > 0 {
		op.Seq = ops[n-1].Seq + 1
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	op.ID = fmt.Sprintf("%s-%s-%s-%d-%s", s.role.Name, op.Volume, op.Kind, op.Seq, hex.EncodeToString(rnd[:]))
	op.Role, op.Owner, op.State, op.Created = s.role.Name, s.c.owner, VolumeOpRunning, s.c.now()
	op.Steps = []Transition{}
	return s.opStep(ctx, op, "volume-begin", fmt.Sprintf("%s of volume %s (%s) by %s", op.Kind, op.Volume, op.From.ID, op.Owner), nil)
}

// withVolumeOp runs fn under the role's lock with the role's volume operations loaded: the pending
// one, if any, must be resumed (same kind and volume), or the command is refused.
func (c *Controller) withVolumeOp(ctx context.Context, cmd, role string, fn func(context.Context, *session, []*VolumeOp) (*VolumeOp, error)) (*VolumeOp, error) {
	var out *VolumeOp
	_, err := c.withRole(ctx, cmd, role, func(ctx context.Context, s *session) (*Record, error) {
		ops, err := loadVolumeOps(ctx, c.opts.Store, role)
		if err != nil {
			return nil, err
		}
		out, err = fn(ctx, s, ops)
		return nil, err
	})
	return out, err
}

// opToken makes the provider's snapshot or restore of op idempotent across crashes and processes,
// and unique to the fleet and the operation: a platform account shared by several fleets, or a
// state store started afresh on an old account, never hands back another operation's volume.
func (s *session) opToken(op *VolumeOp) string {
	h := sha256.Sum256([]byte(s.c.opts.Fleet.Name + "\x00" + op.ID))
	return "drover-op-" + hex.EncodeToString(h[:12])
}

// opLabels are labels for a volume of the role (fleet and role) plus extra.
func (s *session) opLabels(extra map[string]string) map[string]string {
	l := map[string]string{LabelFleet: s.c.opts.Fleet.Name, LabelRole: s.role.Name}
	maps.Copy(l, extra)
	return l
}
