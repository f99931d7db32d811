package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// SnapshotOptions are what drover volumes snapshot asks.
type SnapshotOptions struct {
	// Name and Description are for people: labels of the snapshot (Name defaults to the
	// operation's ID).
	Name, Description string
	// Stop stops the instance that holds the volume for the copy (its services end), detaches the
	// volume, snapshots it, then starts the instance again, gives it the volume back and runs the
	// health gate: for providers that cannot copy a volume in use (the lab), and for a copy with no
	// write in flight. Without it, such a provider's refusal wraps ErrSnapshotNeedsStop.
	Stop bool
}

// SnapshotVolume takes a snapshot of role's volume, labelled with the fleet, role and volume (so
// drover volumes show lists it), who took it, its name and description. It takes the role's lock
// and refuses while a rollout of the role is in flight (ErrInProgress). Every step is persisted
// before it is done: a command killed at any point and run again (the same command; the persisted
// name and flags win) takes the same snapshot (the provider's token is the operation's ID) and
// gives the volume back. A health failure after the volume came back ends the operation failed:
// the instance keeps its volume (nothing else to give it), and the error says so.
func (c *Controller) SnapshotVolume(ctx context.Context, role, volume string, opts SnapshotOptions) (*VolumeOp, error) {
	return c.withVolumeOp(ctx, "volumes snapshot", role, func(ctx context.Context, s *session, ops []*VolumeOp) (*VolumeOp, error) {
		caps, err := s.opCaps(false)
		if err != nil {
			return nil, err
		}
		op := pendingOp(ops)
		switch {
		case op != nil && (op.Kind != VolumeOpSnapshot || op.Volume != volume):
			return nil, &VolumeOpPendingError{Op: op}
		case op != nil:
			s.step(op.ID, "volumes", fmt.Sprintf("resuming %s, interrupted at %q", op.ID, op.Step))
		default:
			from, instance, err := s.opTarget(ctx, caps.vols, "a snapshot", volume)
			if err != nil {
				return nil, err
			}
			if opts.Stop && caps.stop == nil {
				return nil, fmt.Errorf("rollout: role %q: compute %q cannot stop an instance, which --stop needs", role, s.dep.Compute)
			}
			if opts.Stop {
				if err := s.checkRestartable(); err != nil {
					return nil, err
				}
			}
			op = &VolumeOp{Kind: VolumeOpSnapshot, Volume: volume, From: from, Instance: instance,
				Name: opts.Name, Description: opts.Description, Stop: opts.Stop && instance != ""}
			if err := s.newVolumeOp(ctx, ops, op); err != nil {
				return op, err
			}
		}
		return op, s.runSnapshot(ctx, caps, op)
	})
}

func (s *session) runSnapshot(ctx context.Context, caps volumeOpCaps, op *VolumeOp) error {
	if op.Snapshot == "" {
		if op.Stop {
			if err := s.opRelease(ctx, caps, op, op.From); err != nil {
				return err
			}
		}
		if err := s.opStep(ctx, op, "volume-snapshot", "snapshot "+op.From.ID, nil); err != nil {
			return err
		}
		labels := s.opLabels(map[string]string{LabelVolume: op.Volume, LabelTakenBy: op.Owner, LabelVolumeOp: op.ID, LabelSnapName: op.ID})
		if op.Name != "" {
			labels[LabelSnapName] = op.Name
		}
		if op.Description != "" {
			labels[LabelDescription] = op.Description
		}
		sn, err := caps.vols.SnapshotVolume(ctx, op.From.ID, s.opToken(op), labels)
		if errors.Is(err, compute.ErrVolumeInUse) && !op.Stop {
			return s.endOp(ctx, op, VolumeOpFailed, fmt.Errorf("rollout: role %q: compute %q copies volume %s (%s) only detached, and %s uses it (%w): %w",
				s.role.Name, s.dep.Compute, op.Volume, op.From.ID, op.Instance, ErrSnapshotNeedsStop, err))
		}
		if err != nil {
			return fmt.Errorf("rollout: role %q: snapshot of volume %s (%s): %w", s.role.Name, op.Volume, op.From.ID, err)
		}
		if err := s.opStep(ctx, op, "", "", func(o *VolumeOp) { o.Snapshot = sn.ID }); err != nil {
			return err
		}
		s.step(op.ID, "volumes", fmt.Sprintf("snapshot %s of volume %s taken (%s)", sn.ID, op.Volume, sn.State))
	}
	if op.Stop {
		if err := s.opGiveBack(ctx, caps, op, op.From); err != nil {
			return err
		}
		if err := s.opGate(ctx, op); err != nil {
			return s.endOp(ctx, op, VolumeOpFailed, fmt.Errorf("rollout: role %q: snapshot %s taken, but %s fails its checks with volume %s back: %w",
				s.role.Name, op.Snapshot, op.Instance, op.Volume, err))
		}
	}
	return s.endOp(ctx, op, VolumeOpDone, nil)
}

// endOp persists op's end state (and err's text); it returns err.
func (s *session) endOp(ctx context.Context, op *VolumeOp, state string, err error) error {
	note := fmt.Sprintf("%s of volume %s %s", op.Kind, op.Volume, state)
	if err != nil {
		note += ": " + health.Redact(err.Error())
	}
	if serr := s.opStep(ctx, op, "", note, func(o *VolumeOp) {
		o.State = state
		if err != nil {
			o.Error = health.Redact(err.Error())
		}
	}); serr != nil && err == nil {
		return serr
	}
	return err
}

// opRelease stops op's instance (its services end and the platform lets go of the device) and
// detaches vol from it, each step persisted first; what is done already is skipped.
func (s *session) opRelease(ctx context.Context, caps volumeOpCaps, op *VolumeOp, vol HandoffVolume) error {
	now, err := s.volumeByID(ctx, caps.vols, vol.ID)
	if err != nil {
		return err
	}
	if now.AttachedTo == "" {
		return nil
	}
	if now.AttachedTo != op.Instance {
		return fmt.Errorf("rollout: role %q: volume %s is on %s, not on %s as %s recorded: run drover rollout tick %s, then %s",
			s.role.Name, vol.ID, now.AttachedTo, op.Instance, op.ID, s.role.Name, op.Command())
	}
	start := time.Now()
	if err := s.opStep(ctx, op, "volume-stop", "stop "+op.Instance, nil); err != nil {
		return err
	}
	if err := caps.stop.Stop(ctx, op.Instance); err != nil {
		return fmt.Errorf("rollout: role %q: stopping %s, the holder of volume %s: %w", s.role.Name, op.Instance, vol.ID, err)
	}
	if err := s.opStep(ctx, op, "volume-detach", "detach "+vol.ID, nil); err != nil {
		return err
	}
	if err := caps.vols.DetachVolume(ctx, vol.ID); err != nil {
		return fmt.Errorf("rollout: role %q: detaching volume %s from %s: %w", s.role.Name, vol.ID, op.Instance, err)
	}
	s.step(op.ID, "volumes", fmt.Sprintf("%s stopped and volume %s detached in %s", op.Instance, vol.ID, human(time.Since(start))))
	return nil
}

// opGiveBack starts op's instance when it is stopped and attaches vol to it, each step persisted
// first; an attached volume is left as it is. Before the start, the instance's user-data is written
// again (freshUserData): a new boot credential where the role has secrets, and vol named in it.
func (s *session) opGiveBack(ctx context.Context, caps volumeOpCaps, op *VolumeOp, vol HandoffVolume) error {
	now, err := s.volumeByID(ctx, caps.vols, vol.ID)
	if err != nil || now.AttachedTo == op.Instance {
		return err
	}
	in, err := s.opInstance(ctx, op)
	if err != nil {
		return err
	}
	start := time.Now()
	if in.State == compute.Stopped {
		if err := s.opStep(ctx, op, "volume-start", "start "+op.Instance, nil); err != nil {
			return err
		}
		if err := s.freshUserData(ctx, in, s.volumesWith(vol)); err != nil {
			return err
		}
		if err := caps.stop.Start(ctx, op.Instance); err != nil {
			return fmt.Errorf("rollout: role %q: starting %s to give it volume %s: %w", s.role.Name, op.Instance, vol.ID, err)
		}
	}
	if err := s.opStep(ctx, op, "volume-attach", "attach "+vol.ID+" to "+op.Instance, nil); err != nil {
		return err
	}
	if _, err := caps.vols.AttachVolume(ctx, vol.ID, op.Instance); err != nil {
		return fmt.Errorf("rollout: role %q: attaching volume %s to %s: %w", s.role.Name, vol.ID, op.Instance, err)
	}
	s.step(op.ID, "volumes", fmt.Sprintf("%s started and volume %s attached in %s", op.Instance, vol.ID, human(time.Since(start))))
	return nil
}

// opGate runs the role's health checks on op's instance (none without an instance or checks).
func (s *session) opGate(ctx context.Context, op *VolumeOp) error {
	if op.Instance == "" || len(s.checks) == 0 {
		return nil
	}
	in, err := s.opInstance(ctx, op)
	if err != nil {
		return err
	}
	start := time.Now()
	err = health.Gate(ctx, s.checks, []health.Target{target(in)}, func(t health.Target, c health.Check, streak int, err error) {
		switch {
		case err != nil:
			s.step(op.ID, "health", fmt.Sprintf("%s on %s: %v", c.Name, t.Name, err))
		case streak == c.Healthy:
			s.step(op.ID, "health", fmt.Sprintf("%s on %s: healthy (%d in a row)", c.Name, t.Name, streak))
		}
	})
	if err == nil {
		s.step(op.ID, "health", fmt.Sprintf("%s passed %d check(s) in %s", in.ID, len(s.checks), human(time.Since(start))))
	}
	return err
}

// opInstance is op's instance as the provider reports it.
func (s *session) opInstance(ctx context.Context, op *VolumeOp) (compute.Instance, error) {
	ins, err := s.comp.Instances(ctx, compute.Selector{LabelRole: s.role.Name})
	if err != nil {
		return compute.Instance{}, fmt.Errorf("rollout: role %q: listing instances: %w", s.role.Name, err)
	}
	for _, in := range ins {
		if in.ID == op.Instance && in.State != compute.Terminated {
			return in, nil
		}
	}
	return compute.Instance{}, fmt.Errorf("rollout: role %q: instance %s, which holds volume %s in %s, is gone: %w", s.role.Name, op.Instance, op.Volume, op.ID, compute.ErrNotFound)
}

// volumeByID is a volume of the role (whatever its other labels) as the provider reports it now.
func (s *session) volumeByID(ctx context.Context, vp compute.Volumes, id string) (compute.Volume, error) {
	got, err := vp.Volumes(ctx, compute.Selector{LabelFleet: s.c.opts.Fleet.Name, LabelRole: s.role.Name})
	if err != nil {
		return compute.Volume{}, fmt.Errorf("rollout: role %q: listing volumes: %w", s.role.Name, err)
	}
	for _, v := range got {
		if v.ID == id {
			return v, nil
		}
	}
	return compute.Volume{}, fmt.Errorf("rollout: role %q: volume %s is gone: %w", s.role.Name, id, compute.ErrNotFound)
}
