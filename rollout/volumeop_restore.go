package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drover-dev/drover/plugins/compute"
)

// RestoreVolume puts role's volume back to source: a snapshot of it (a new volume is made from
// it), or a volume an earlier restore replaced (put back as it is). The new volume is made while
// the instance still serves; then the instance is stopped, the volume in service detached
// (confirmed by the provider) and relabelled out of service (LabelReplaced: kept, listed by drover
// volumes show, restorable and deletable), the new volume labelled as the role's, recorded in the
// rollout that holds the volumes, named in the instance's user-data, the instance started, the new
// volume attached, and the health gate run. A failed gate reverts the same way: the volume that
// was in service is put back (the restored one is kept, labelled LabelRestoring) and the error
// says so.
//
// It takes the role's lock and refuses while a rollout of the role is in flight (ErrInProgress).
// Every step is persisted before it is done and starts from what the provider reports, so a
// command killed at any point and run again converges: never two volumes labelled as the role's
// (the old one loses the labels before the new one gets them), never a volume on two instances
// (an attach follows a detach the provider confirmed). Providers must implement VolumeLabeler,
// UserDataEditor and Stopper besides Volumes.
func (c *Controller) RestoreVolume(ctx context.Context, role, volume, source string) (*VolumeOp, error) {
	return c.withVolumeOp(ctx, "volumes restore", role, func(ctx context.Context, s *session, ops []*VolumeOp) (*VolumeOp, error) {
		caps, err := s.opCaps(true)
		if err != nil {
			return nil, err
		}
		if err := s.checkRestartable(); err != nil {
			return nil, err
		}
		op := pendingOp(ops)
		switch {
		case op != nil && (op.Kind != VolumeOpRestore || op.Volume != volume || op.Source != source):
			return nil, &VolumeOpPendingError{Op: op}
		case op != nil:
			s.step(op.ID, "volumes", fmt.Sprintf("resuming %s, interrupted at %q (%s)", op.ID, op.Step, op.State))
		default:
			from, instance, err := s.opTarget(ctx, caps.vols, "a restore", volume)
			if err != nil {
				return nil, err
			}
			to, err := s.restoreSource(ctx, caps.vols, volume, source)
			if err != nil {
				return nil, err
			}
			if instance != "" && s.c.opts.BootVolumes == nil {
				return nil, fmt.Errorf("rollout: role %q: no way to name the restored volume in user-data (Options.BootVolumes is nil)", role)
			}
			op = &VolumeOp{Kind: VolumeOpRestore, Volume: volume, Source: source, From: from, To: to, Instance: instance}
			if err := s.newVolumeOp(ctx, ops, op); err != nil {
				return op, err
			}
		}
		return op, s.runRestore(ctx, caps, op)
	})
}

// restoreSource checks source: a snapshot of the role's volume (nil: the volume is made from it),
// or a volume a restore set aside (returned: it is put back).
func (s *session) restoreSource(ctx context.Context, vp compute.Volumes, volume, source string) (*HandoffVolume, error) {
	snaps, err := vp.VolumeSnapshots(ctx, s.volumeLabels(volume))
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: listing snapshots of volume %s: %w", s.role.Name, volume, err)
	}
	var known []string
	for _, sn := range snaps {
		if sn.ID == source {
			return nil, nil
		}
		known = append(known, sn.ID)
	}
	for _, label := range []string{LabelReplaced, LabelRestoring} {
		vols, err := vp.Volumes(ctx, compute.Selector(s.opLabels(map[string]string{label: volume})))
		if err != nil {
			return nil, fmt.Errorf("rollout: role %q: listing volumes set aside: %w", s.role.Name, err)
		}
		for _, v := range vols {
			if v.ID == source {
				if v.AttachedTo != "" {
					return nil, fmt.Errorf("rollout: role %q: volume %s is attached to %s: detach it first", s.role.Name, v.ID, v.AttachedTo)
				}
				return &HandoffVolume{Name: volume, ID: v.ID, GuestPath: v.GuestPath}, nil
			}
			known = append(known, v.ID)
		}
	}
	slices.Sort(known)
	if len(known) == 0 {
		return nil, fmt.Errorf("rollout: role %q: %q is not a snapshot of volume %s (%w): it has none yet (drover volumes snapshot %s %s takes one)",
			s.role.Name, source, volume, ErrNoSuchSource, s.role.Name, volume)
	}
	return nil, fmt.Errorf("rollout: role %q: %q is neither a snapshot of volume %s nor a volume a restore set aside (%w); want one of: %s",
		s.role.Name, source, volume, ErrNoSuchSource, strings.Join(known, ", "))
}

func (s *session) runRestore(ctx context.Context, caps volumeOpCaps, op *VolumeOp) error {
	if op.State == VolumeOpRunning {
		if op.To == nil {
			if err := s.opStep(ctx, op, "volume-create", "make a volume from snapshot "+op.Source, nil); err != nil {
				return err
			}
			v, err := caps.vols.RestoreVolume(ctx, op.Source, compute.VolumeSpec{Token: s.opToken(op), Name: fmt.Sprintf("%s-%s", s.role.Name, op.Volume),
				Labels: s.opLabels(map[string]string{LabelRestoring: op.Volume, LabelRestoreOp: op.ID})})
			if err != nil {
				return fmt.Errorf("rollout: role %q: making a volume from snapshot %s: %w", s.role.Name, op.Source, err)
			}
			if err := s.opStep(ctx, op, "", fmt.Sprintf("volume %s made from snapshot %s (%d GiB)", v.ID, op.Source, v.SizeGiB), func(o *VolumeOp) {
				o.To = &HandoffVolume{Name: op.Volume, ID: v.ID, GuestPath: v.GuestPath}
			}); err != nil {
				return err
			}
		}
		if err := s.swapVolume(ctx, caps, op, op.From, *op.To, LabelReplaced); err != nil {
			return err
		}
		gateErr := s.opGate(ctx, op)
		if gateErr == nil {
			return s.endOp(ctx, op, VolumeOpDone, nil)
		}
		if ctx.Err() != nil {
			return gateErr
		}
		if err := s.opStep(ctx, op, "volume-revert", fmt.Sprintf("%s fails its checks on the restored volume: putting %s back", op.Instance, op.From.ID), func(o *VolumeOp) {
			o.State, o.Error = VolumeOpReverting, gateErr.Error()
		}); err != nil {
			return err
		}
	}
	// Reverting: the volume in service before goes back; the restored one is set aside.
	cause := errors.New(op.Error)
	if err := s.swapVolume(ctx, caps, op, *op.To, op.From, LabelRestoring); err != nil {
		return err
	}
	if err := s.opGate(ctx, op); err != nil {
		return s.endOp(ctx, op, VolumeOpFailed, fmt.Errorf("rollout: role %q: restore %s reverted, but %s fails its checks on volume %s too: %w (restored: %v)",
			s.role.Name, op.ID, op.Instance, op.From.ID, err, cause))
	}
	return s.endOp(ctx, op, VolumeOpReverted, fmt.Errorf("rollout: role %q: restore %s reverted: %s failed its checks on the restored volume %s (%v); volume %s serves again, %s is kept",
		s.role.Name, op.ID, op.Instance, op.To.ID, cause, op.From.ID, op.To.ID))
}

// swapVolume takes out out of service and puts in in its place on op's instance: stop, confirmed
// detach of out, out relabelled (set aside under label aside), in labelled as the role's volume,
// recorded in the rollout that holds the volumes, named in the instance's user-data, start, attach
// of in. Each step is persisted first; an in already on the instance skips the machine steps.
func (s *session) swapVolume(ctx context.Context, caps volumeOpCaps, op *VolumeOp, out, in HandoffVolume, aside string) error {
	inNow, err := s.volumeByID(ctx, caps.vols, in.ID)
	if err != nil {
		return err
	}
	onIt := op.Instance != "" && inNow.AttachedTo == op.Instance
	if inNow.AttachedTo != "" && !onIt {
		return fmt.Errorf("rollout: role %q: volume %s is attached to %s, not to %s: detach it first", s.role.Name, in.ID, inNow.AttachedTo, op.Instance)
	}
	if op.Instance != "" && !onIt {
		if err := s.opRelease(ctx, caps, op, out); err != nil {
			return err
		}
		if in, err := s.opInstance(ctx, op); err != nil {
			return err
		} else if in.State != compute.Stopped {
			// out was attached nowhere: the instance still runs, and its user-data is edited stopped.
			if err := s.opStep(ctx, op, "volume-stop", "stop "+op.Instance, nil); err != nil {
				return err
			}
			if err := caps.stop.Stop(ctx, op.Instance); err != nil {
				return fmt.Errorf("rollout: role %q: stopping %s: %w", s.role.Name, op.Instance, err)
			}
		}
	}
	if err := s.opStep(ctx, op, "volume-relabel", fmt.Sprintf("set %s aside, label %s as volume %s", out.ID, in.ID, op.Volume), nil); err != nil {
		return err
	}
	if _, err := caps.labels.SetVolumeLabels(ctx, out.ID, s.opLabels(map[string]string{aside: op.Volume, LabelRestoreOp: op.ID})); err != nil {
		return fmt.Errorf("rollout: role %q: relabelling volume %s: %w", s.role.Name, out.ID, err)
	}
	if _, err := caps.labels.SetVolumeLabels(ctx, in.ID, s.volumeLabels(op.Volume)); err != nil {
		return fmt.Errorf("rollout: role %q: labelling volume %s as %s: %w", s.role.Name, in.ID, op.Volume, err)
	}
	holder, err := s.recordVolume(ctx, op, in)
	if err != nil || op.Instance == "" || onIt {
		return err
	}
	if err := s.opStep(ctx, op, "volume-userdata", fmt.Sprintf("name %s in %s's user-data", in.GuestPath, op.Instance), nil); err != nil {
		return err
	}
	if err := caps.useData.EditUserData(ctx, op.Instance, func(ud []byte) ([]byte, error) {
		return s.c.opts.BootVolumes(ud, s.role.Name, s.bootVolumesOf(holder))
	}); err != nil {
		return fmt.Errorf("rollout: role %q: naming volume %s in %s's user-data: %w", s.role.Name, in.ID, op.Instance, err)
	}
	return s.opGiveBack(ctx, caps, op, in)
}

// recordVolume writes in in place of the volume of the same name in the newest rollout record that
// holds the role's volumes (where the handoff reads them and writes their holder), and returns
// that record's volumes. No record: nothing to write.
func (s *session) recordVolume(ctx context.Context, op *VolumeOp, in HandoffVolume) ([]HandoffVolume, error) {
	var rec *Record
	for i := len(s.recs) - 1; i >= 0 && rec == nil; i-- {
		if h := s.recs[i].Progress.Handoff; h != nil && len(h.Volumes) > 0 {
			rec = s.recs[i]
		}
	}
	if rec == nil {
		return []HandoffVolume{in}, nil
	}
	vols := slices.Clone(rec.Progress.Handoff.Volumes)
	i := slices.IndexFunc(vols, func(v HandoffVolume) bool { return v.Name == op.Volume })
	if i < 0 {
		vols = append(vols, in)
	} else {
		vols[i] = in
	}
	if slices.Equal(vols, rec.Progress.Handoff.Volumes) {
		return vols, nil
	}
	if err := s.opStep(ctx, op, "volume-record", fmt.Sprintf("record volume %s in rollout %s", in.ID, rec.ID), nil); err != nil {
		return nil, err
	}
	if err := s.saveProgress(ctx, rec, "", func(h *HandoffProgress) { h.Volumes = vols }); err != nil {
		return nil, err
	}
	return vols, nil
}

// volumesWith is the volumes of the newest rollout record that holds them, with vol in place of the
// one of its name (only vol when no record has them).
func (s *session) volumesWith(vol HandoffVolume) []HandoffVolume {
	for i := len(s.recs) - 1; i >= 0; i-- {
		if h := s.recs[i].Progress.Handoff; h != nil && len(h.Volumes) > 0 {
			vols := slices.Clone(h.Volumes)
			if j := slices.IndexFunc(vols, func(v HandoffVolume) bool { return v.Name == vol.Name }); j >= 0 {
				vols[j] = vol
				return vols
			}
			return append(vols, vol)
		}
	}
	return []HandoffVolume{vol}
}

// bootVolumesOf is what drover-boot mounts of vols, as the deploy declares them.
func (s *session) bootVolumesOf(vols []HandoffVolume) []BootVolume {
	out := make([]BootVolume, 0, len(vols))
	for _, hv := range vols {
		if v := deployVolume(s.dep, hv.Name); v != nil {
			out = append(out, BootVolume{Name: hv.Name, GuestPath: hv.GuestPath, Mount: v.Mount, FS: v.FS, Owner: v.Owner, Mode: v.Mode})
		}
	}
	return out
}

// DeleteSetAside deletes what drover volumes show lists under role's volume and no rollout needs:
// a volume a restore set aside, or a snapshot of the volume. The volume in service is refused, as
// is anything of another role or volume (ErrNoSuchSource names what may be deleted). It takes the
// role's lock and is refused while a volume operation of the role is unfinished. It returns what
// it deleted: "volume" or "snapshot".
func (c *Controller) DeleteSetAside(ctx context.Context, role, volume, id string) (string, error) {
	var kind string
	_, err := c.withVolumeOp(ctx, "volumes delete", role, func(ctx context.Context, s *session, ops []*VolumeOp) (*VolumeOp, error) {
		if op := pendingOp(ops); op != nil {
			return nil, &VolumeOpPendingError{Op: op}
		}
		caps, err := s.opCaps(false)
		if err != nil {
			return nil, err
		}
		if deployVolume(s.dep, volume) == nil {
			return nil, fmt.Errorf("rollout: role %q has no volume %q", role, volume)
		}
		if inService, err := caps.vols.Volumes(ctx, s.volumeLabels(volume)); err != nil {
			return nil, fmt.Errorf("rollout: role %q: listing volume %s: %w", role, volume, err)
		} else if slices.ContainsFunc(inService, func(v compute.Volume) bool { return v.ID == id }) {
			return nil, fmt.Errorf("rollout: role %q: %s is volume %s in service: it is never deleted by drover", role, id, volume)
		}
		src, err := s.restoreSource(ctx, caps.vols, volume, id)
		if err != nil {
			return nil, err
		}
		if src != nil {
			kind = "volume"
			if err := caps.vols.DeleteVolume(ctx, id); err != nil {
				return nil, fmt.Errorf("rollout: role %q: deleting volume %s: %w", role, id, err)
			}
		} else {
			kind = "snapshot"
			if err := caps.vols.DeleteVolumeSnapshot(ctx, id); err != nil {
				return nil, fmt.Errorf("rollout: role %q: deleting snapshot %s: %w", role, id, err)
			}
		}
		s.step("", "volumes", fmt.Sprintf("deleted %s %s of volume %s", kind, id, volume))
		return nil, nil
	})
	return kind, err
}
