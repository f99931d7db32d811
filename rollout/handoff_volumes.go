package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// BootVolume is a volume as a new instance's user-data lists it: drover-boot waits for GuestPath,
// formats it only when blank, checks and mounts it on Mount, and only then starts the role's
// services. Options.BootVolumes writes it into the user-data.
type BootVolume struct {
	Name      string
	GuestPath string
	Mount     string
	FS        string
	Owner     string
	Mode      fs.FileMode
}

// volumeCaps are the capabilities the handoff needs of the role's compute provider.
func (s *session) volumeCaps() (compute.Volumes, compute.Stopper, error) {
	vp, ok := s.comp.(compute.Volumes)
	if !ok {
		return nil, nil, fmt.Errorf("rollout: role %q: compute %q cannot attach volumes (it does not implement compute.Volumes)", s.role.Name, s.dep.Compute)
	}
	st, ok := s.comp.(compute.Stopper)
	if !ok {
		return nil, nil, fmt.Errorf("rollout: role %q: compute %q cannot stop an instance, which the handoff needs to end blue's services", s.role.Name, s.dep.Compute)
	}
	return vp, st, nil
}

// volumeLabels find a volume of the role: fleet, role and the volume's name, never an instance.
func (s *session) volumeLabels(name string) compute.Selector {
	return compute.Selector{LabelFleet: s.c.opts.Fleet.Name, LabelRole: s.role.Name, LabelVolume: name}
}

// volumeToken makes CreateVolume of a role's volume idempotent across crashes and processes; it is
// short enough for every platform's client token.
func volumeToken(fleetName, role, name string) string {
	h := sha256.Sum256([]byte(fleetName + "\x00" + role + "\x00" + name))
	return "drover-vol-" + hex.EncodeToString(h[:12])
}

// findVolumes finds each volume of the deploy by its labels and records it in r. A volume is
// created (blank) only when the role never had it: one that the live rollout had and that is gone
// is an error, since a blank volume in its place would serve no data.
func (s *session) findVolumes(ctx context.Context, r *Record) error {
	vp, _, err := s.volumeCaps()
	if err != nil {
		return err
	}
	had := map[string]bool{}
	if l := s.live(); l != nil && l.Progress.Handoff != nil {
		for _, v := range l.Progress.Handoff.Volumes {
			had[v.Name] = true
		}
	}
	var found []HandoffVolume
	for _, v := range s.dep.Volumes {
		sel := s.volumeLabels(v.Name)
		got, err := vp.Volumes(ctx, sel)
		if err != nil {
			return fmt.Errorf("rollout: role %q: listing volume %s: %w", r.Role, v.Name, err)
		}
		switch {
		case len(got) == 0 && had[v.Name]:
			return fmt.Errorf("rollout: role %q: volume %s of rollout %s is gone (no volume has labels %v): a blank one would serve no data; restore it from a snapshot with those labels",
				r.Role, v.Name, s.live().ID, map[string]string(sel))
		case len(got) == 0:
			vol, err := vp.CreateVolume(ctx, compute.VolumeSpec{Token: volumeToken(s.c.opts.Fleet.Name, r.Role, v.Name),
				Name: fmt.Sprintf("%s-%s", r.Role, v.Name), SizeGiB: v.SizeGiB, Labels: maps.Clone(sel)})
			if err != nil {
				return fmt.Errorf("rollout: role %q: creating volume %s: %w", r.Role, v.Name, err)
			}
			s.step(r.ID, "volume", fmt.Sprintf("created volume %s: %s (%d GiB, blank: green formats it)", v.Name, vol.ID, vol.SizeGiB))
			got = []compute.Volume{vol}
		case len(got) > 1:
			return fmt.Errorf("rollout: role %q: %d volumes have labels %v (%s, ...), want one: find the one that holds the data and delete the others",
				r.Role, len(got), map[string]string(sel), got[0].ID)
		}
		vol := got[0]
		if vol.GuestPath == "" {
			return fmt.Errorf("rollout: role %q: compute %q reports no guest path for volume %s before it is attached, so green's user-data cannot name it", r.Role, s.dep.Compute, vol.ID)
		}
		if vol.SizeGiB < v.SizeGiB {
			s.step(r.ID, "volume", fmt.Sprintf("volume %s (%s) is %d GiB, the deploy asks %d GiB: growing a volume is not built; it is used as it is", v.Name, vol.ID, vol.SizeGiB, v.SizeGiB))
		}
		found = append(found, HandoffVolume{Name: v.Name, ID: vol.ID, GuestPath: vol.GuestPath})
	}
	if r.Progress.Handoff != nil && slices.Equal(found, r.Progress.Handoff.Volumes) {
		return nil
	}
	return s.saveProgress(ctx, r, "", func(h *HandoffProgress) { h.Volumes = found })
}

// volumeUserData adds r's volumes to a launch spec's user-data.
func (s *session) volumeUserData(r *Record, spec *compute.Spec) error {
	if r.Progress.Handoff == nil || len(r.Progress.Handoff.Volumes) == 0 {
		return nil
	}
	if s.c.opts.BootVolumes == nil {
		return fmt.Errorf("rollout: role %q: no way to list volumes in user-data (Options.BootVolumes is nil)", r.Role)
	}
	vols := make([]BootVolume, 0, len(r.Progress.Handoff.Volumes))
	for _, hv := range r.Progress.Handoff.Volumes {
		v := deployVolume(s.dep, hv.Name)
		if v == nil {
			return fmt.Errorf("rollout: role %q: volume %s of rollout %s is no longer in the deploy block", r.Role, hv.Name, r.ID)
		}
		vols = append(vols, BootVolume{Name: hv.Name, GuestPath: hv.GuestPath, Mount: v.Mount, FS: v.FS, Owner: v.Owner, Mode: v.Mode})
	}
	ud, err := s.c.opts.BootVolumes(spec.UserData, r.Role, vols)
	if err != nil {
		return fmt.Errorf("rollout: role %q: listing volumes in user-data: %w", r.Role, err)
	}
	spec.UserData = ud
	return nil
}

func deployVolume(dep *fleet.Deploy, name string) *fleet.Volume {
	for i := range dep.Volumes {
		if dep.Volumes[i].Name == name {
			return &dep.Volumes[i]
		}
	}
	return nil
}

// saveProgress writes a change of r's handoff progress (no transition), then passes the crash
// hook's point crash ("" for none).
func (s *session) saveProgress(ctx context.Context, r *Record, crash State, mutate func(*HandoffProgress)) error {
	next := r.clone()
	if next.Progress.Handoff == nil {
		next.Progress.Handoff = &HandoffProgress{}
	}
	mutate(next.Progress.Handoff)
	next.Updated = s.c.now()
	if err := saveRecord(ctx, s.c.opts.Store, next); err != nil {
		return err
	}
	*r = *next
	if crash == "" {
		return nil
	}
	return s.c.crashPoint(crash)
}

// moveVolumes puts every volume recorded in rec on instance to: the holder is recorded first;
// then, when any volume is elsewhere, to is made ready while the old holder still has the volumes
// and serves (a stopped to gets fresh user-data, is started and must show drover-boot waiting for
// them: startForVolumes), and only then, for each volume not on to yet, its holder is stopped (its
// services end and the platform lets go of the device), the volume detached (confirmed by the
// provider), snapshotted when snapshot is set and the deploy asks, and attached to to. The
// unavailability is the stop, the detach, the attach and the services' start on to: never to's
// boot. A hand-back after green failed with the data (session.holderFailed: the holder serves
// nothing) stops and detaches first, then boots to, then attaches. Each step is written to rec before it is done and asks the provider where the volume is
// first, so a rerun after a crash at any point finishes the move; a volume is attached only once it
// is attached nowhere.
func (s *session) moveVolumes(ctx context.Context, rec *Record, to string, snapshot bool) error {
	_, err := s.moveVolumesTo(ctx, rec, to, snapshot)
	return err
}

// moveVolumesTo is moveVolumes, and reports whether any volume had to move.
func (s *session) moveVolumesTo(ctx context.Context, rec *Record, to string, snapshot bool) (moved bool, err error) {
	vp, st, err := s.volumeCaps()
	if err != nil {
		return false, err
	}
	if err := s.checkRestartable(); err != nil {
		return false, err
	}
	if rec.Progress.Handoff.Holder != to {
		if err := s.saveProgress(ctx, rec, "handoff-holder", func(h *HandoffProgress) { h.Holder, h.Step = to, "holder "+to }); err != nil {
			return moved, err
		}
	}
	now := make([]compute.Volume, len(rec.Progress.Handoff.Volumes))
	for i, hv := range rec.Progress.Handoff.Volumes {
		if now[i], err = s.volumeNow(ctx, vp, hv); err != nil {
			return moved, err
		}
		moved = moved || now[i].AttachedTo != to
	}
	if !moved {
		return false, nil
	}
	release := func() error {
		for i, hv := range rec.Progress.Handoff.Volumes {
			if now[i].AttachedTo == to {
				continue
			}
			if err := s.releaseVolume(ctx, vp, st, rec, hv, now[i].AttachedTo, snapshot); err != nil {
				return err
			}
		}
		return nil
	}
	if s.holderFailed { // it serves nothing: stopped first, so that the boot has the machine
		if err := release(); err != nil {
			return moved, err
		}
	}
	if err := s.startForVolumes(ctx, st, rec, to); err != nil {
		return moved, err
	}
	if !s.holderFailed {
		if err := release(); err != nil {
			return moved, err
		}
	}
	for i, hv := range rec.Progress.Handoff.Volumes {
		if now[i].AttachedTo == to {
			continue
		}
		if err := s.timedStep(ctx, rec, "handoff-attach", "attach "+hv.ID+" to "+to, fmt.Sprintf("volume %s (%s) attached to %s", hv.Name, hv.ID, to), func() error {
			if _, err := vp.AttachVolume(ctx, hv.ID, to); err != nil {
				return fmt.Errorf("rollout: role %q: attaching volume %s to %s: %w", s.role.Name, hv.ID, to, err)
			}
			return nil
		}); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// releaseVolume stops from, the holder of hv (its services end and the platform lets go of the
// device), detaches hv (confirmed by the provider), and snapshots it when snapshot is set and the
// deploy asks. Each step is persisted first and idempotent.
func (s *session) releaseVolume(ctx context.Context, vp compute.Volumes, st compute.Stopper, rec *Record, hv HandoffVolume, from string, snapshot bool) error {
	if from != "" {
		if err := s.timedStep(ctx, rec, "handoff-stop", "stop "+from, fmt.Sprintf("stopped %s, the holder of volume %s", from, hv.Name), func() error {
			if err := st.Stop(ctx, from); err != nil && !errors.Is(err, compute.ErrNotFound) {
				return fmt.Errorf("rollout: role %q: stopping %s, the holder of volume %s: %w", s.role.Name, from, hv.Name, err)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := s.timedStep(ctx, rec, "handoff-detach", "detach "+hv.ID, fmt.Sprintf("volume %s (%s) detached from %s", hv.Name, hv.ID, from), func() error {
			if err := vp.DetachVolume(ctx, hv.ID); err != nil {
				return fmt.Errorf("rollout: role %q: detaching volume %s from %s: %w", s.role.Name, hv.ID, from, err)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if v := deployVolume(s.dep, hv.Name); snapshot && v != nil && v.SnapshotBefore {
		return s.snapshotVolume(ctx, vp, rec, hv)
	}
	return nil
}

// timedStep records step in rec (passing the crash hook's point), does it, and reports how long it
// took.
func (s *session) timedStep(ctx context.Context, rec *Record, point State, step, done string, do func() error) error {
	if err := s.saveProgress(ctx, rec, point, func(h *HandoffProgress) { h.Step = step }); err != nil {
		return err
	}
	start := time.Now()
	if err := do(); err != nil {
		return err
	}
	s.step(rec.ID, "handoff", fmt.Sprintf("%s in %s", done, human(time.Since(start))))
	return nil
}

func (s *session) snapshotVolume(ctx context.Context, vp compute.Volumes, rec *Record, hv HandoffVolume) error {
	token := rec.ID + "-" + hv.Name
	var id string
	err := s.timedStep(ctx, rec, "handoff-snapshot", "snapshot "+hv.ID, "snapshot of volume "+hv.Name+" taken", func() error {
		labels := maps.Clone(s.volumeLabels(hv.Name))
		labels[LabelRollout] = rec.ID
		sn, err := vp.SnapshotVolume(ctx, hv.ID, token, labels)
		if err != nil {
			return fmt.Errorf("rollout: role %q: snapshot of volume %s before the handoff: %w", s.role.Name, hv.ID, err)
		}
		id = sn.ID
		return nil
	})
	if err != nil || slices.Contains(rec.Progress.Handoff.Snapshots, id) {
		return err
	}
	return s.saveProgress(ctx, rec, "", func(h *HandoffProgress) { h.Snapshots = append(h.Snapshots, id) })
}

// volumeNow is a recorded volume as the provider reports it now.
func (s *session) volumeNow(ctx context.Context, vp compute.Volumes, hv HandoffVolume) (compute.Volume, error) {
	got, err := vp.Volumes(ctx, s.volumeLabels(hv.Name))
	if err != nil {
		return compute.Volume{}, fmt.Errorf("rollout: role %q: listing volume %s: %w", s.role.Name, hv.Name, err)
	}
	for _, v := range got {
		if v.ID == hv.ID {
			return v, nil
		}
	}
	return compute.Volume{}, fmt.Errorf("rollout: role %q: volume %s (%s) is gone (%w): a blank one would serve no data; restore it from a snapshot with labels %v",
		s.role.Name, hv.Name, hv.ID, compute.ErrNotFound, map[string]string(s.volumeLabels(hv.Name)))
}

// ensureVolumes, part of every command's cleanup, puts the role's volumes on the instance of the
// rollout that should serve: the one in flight once it is draining or promoted, otherwise the live
// one (after a rollback or a failed handoff: blue, started again). A rollout cutting over, or a
// first deploy in flight, is left to the command that drives it. Idempotent (moveVolumes).
func (s *session) ensureVolumes(ctx context.Context) error {
	if len(s.dep.Volumes) == 0 {
		return nil
	}
	var rec *Record // the newest record that knows the volumes: the holder is written there
	for i := len(s.recs) - 1; i >= 0 && rec == nil; i-- {
		if h := s.recs[i].Progress.Handoff; h != nil && len(h.Volumes) > 0 {
			rec = s.recs[i]
		}
	}
	if rec == nil {
		return nil
	}
	want := s.live()
	if a := s.active(); a != nil {
		switch {
		case a.State == Draining || a.State == Promoted:
			want = a
		case a.State == CuttingOver || a.Previous == "":
			return nil
		}
	}
	if want == nil {
		return nil
	}
	ins, err := s.instancesOf(ctx, want, true)
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		s.step(want.ID, "volumes", fmt.Sprintf("rollout %s should hold the volumes but has no instance left: they stay where they are", want.ID))
		return nil
	}
	moved, err := s.moveVolumesTo(ctx, rec, ins[0].ID, false)
	if err != nil || !moved || len(s.checks) == 0 {
		return err
	}
	// Given back (blue, started again): it serves once its services are up on the data. It is read
	// again because it was listed stopped, and a cloud gives a stopped instance no public address
	// (EC2 hands one out at each start).
	blue, err := s.instanceByID(ctx, ins[0].ID)
	if err != nil {
		return err
	}
	start := time.Now()
	err = health.Gate(ctx, s.checks, []health.Target{target(blue)}, s.observer(rec, "health"))
	if err != nil {
		return fmt.Errorf("rollout: role %q: %s has the volume(s) again but does not pass its checks: %w", s.role.Name, ins[0].ID, err)
	}
	s.step(want.ID, "health", fmt.Sprintf("%s passed %d check(s) %s after it got the volume(s)", ins[0].ID, len(s.checks), human(time.Since(start))))
	return nil
}
