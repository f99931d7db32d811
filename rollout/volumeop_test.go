package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

// detachedOnly is the lab fake with the lab's (qemu's) limit: it cannot copy a volume in use.
type detachedOnly struct{ *labCompute }

func (d detachedOnly) SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (compute.VolumeSnapshot, error) {
	vols, err := d.Volumes(ctx, nil)
	if err != nil {
		return compute.VolumeSnapshot{}, err
	}
	for _, v := range vols {
		if v.ID == id && v.AttachedTo != "" {
			if sn, err := d.VolumeSnapshots(ctx, compute.Selector{rollout.LabelVolumeOp: labels[rollout.LabelVolumeOp]}); err == nil && len(sn) == 1 {
				return sn[0], nil // taken already: idempotent by token, as qemu's
			}
			return compute.VolumeSnapshot{}, fmt.Errorf("test: snapshot of %s: attached to %s: %w", id, v.AttachedTo, compute.ErrVolumeInUse)
		}
	}
	return d.labCompute.SnapshotVolume(ctx, id, token, labels)
}

func (l *lab) detachedOnly(o *rollout.Options) {
	o.Compute = func(context.Context, string) (compute.Provider, error) { return detachedOnly{l.comp}, nil }
}

// marker is the first bytes of a volume, as a guest wrote them.
func (l *lab) marker(t *testing.T, id string) string {
	t.Helper()
	b, err := l.comp.ReadMarker(context.Background(), id, 2)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roleVolumes are the volumes labelled as db's pgdata, and every volume of db.
func (l *lab) dbVolumes(t *testing.T) (inService, all []compute.Volume) {
	t.Helper()
	var err error
	if inService, err = l.comp.Volumes(context.Background(), compute.Selector{rollout.LabelFleet: "lab", rollout.LabelRole: "db", rollout.LabelVolume: "pgdata"}); err != nil {
		t.Fatal(err)
	}
	if all, err = l.comp.Volumes(context.Background(), compute.Selector{rollout.LabelRole: "db"}); err != nil {
		t.Fatal(err)
	}
	return inService, all
}

// setInstanceHealthy makes one instance answer 200 (or 503).
func (l *lab) setInstanceHealthy(id string, healthy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.backends[id]; b != nil {
		b.healthy.Store(healthy)
	}
}

// checkRestored checks that db's one volume in service is a new volume holding want, on running
// instance in, named in its user-data and in the rollout record, and that the volume it replaced
// is kept aside, attached nowhere.
func (l *lab) checkRestored(t *testing.T, in compute.Instance, old compute.Volume, want string) compute.Volume {
	t.Helper()
	inService, all := l.dbVolumes(t)
	if len(inService) != 1 {
		t.Fatalf("%d volumes labelled as db's pgdata, want 1: %+v", len(inService), inService)
	}
	v := inService[0]
	if v.ID == old.ID || v.AttachedTo != in.ID || l.marker(t, v.ID) != want {
		t.Errorf("volume in service %s (on %q, data %q); want a new volume on %s holding %q", v.ID, v.AttachedTo, l.marker(t, v.ID), in.ID, want)
	}
	for _, other := range all {
		if other.ID != v.ID && other.AttachedTo != "" {
			t.Errorf("volume %s is still attached to %s", other.ID, other.AttachedTo)
		}
		if other.ID == old.ID && other.Labels[rollout.LabelReplaced] != "pgdata" {
			t.Errorf("the replaced volume %s has labels %v, want replaced-volume=pgdata", old.ID, other.Labels)
		}
	}
	if got := l.instanceOf(t, l.imageOf[in.ID]); got.State != compute.Running {
		t.Errorf("instance %s is %s, want running", in.ID, got.State)
	}
	var ud struct{ Volumes []rollout.BootVolume }
	if err := json.Unmarshal(l.comp.UserData(in.ID), &ud); err != nil || len(ud.Volumes) != 1 || ud.Volumes[0].GuestPath != v.GuestPath {
		t.Errorf("user-data %s (%v): want it to name %s", l.comp.UserData(in.ID), err, v.GuestPath)
	}
	recs, err := l.dbController().History(context.Background(), "db")
	if err != nil || len(recs) == 0 || recs[0].Progress.Handoff == nil || recs[0].Progress.Handoff.Volumes[0].ID != v.ID {
		t.Errorf("the live rollout records %+v (%v), want volume %s", recs[0].Progress.Handoff, err, v.ID)
	}
	return v
}

// TestVolumeSnapshotByHand: a snapshot of the volume in use carries the role's labels, who took
// it, its name and description; the lab's limit (no copy of a volume in use) is refused with
// ErrSnapshotNeedsStop, and --stop takes it with the instance stopped, then gives the volume back.
func TestVolumeSnapshotByHand(t *testing.T) {
	l, img1 := dbDeployed(t)
	in := l.instanceOf(t, img1)
	op, err := l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{Name: "before-upgrade", Description: "pg 15 to 16"})
	if err != nil || op.State != rollout.VolumeOpDone || op.Snapshot == "" {
		t.Fatalf("snapshot: %+v, %v", op, err)
	}
	snaps, err := l.comp.VolumeSnapshots(t.Context(), compute.Selector{rollout.LabelFleet: "lab", rollout.LabelRole: "db", rollout.LabelVolume: "pgdata"})
	if err != nil || len(snaps) != 1 { // a first deploy takes none
		t.Fatalf("snapshots of db: %+v, %v; want the one taken", snaps, err)
	}
	sn := snaps[0]
	if sn.ID != op.Snapshot || sn.Labels[rollout.LabelTakenBy] != l.owner || sn.Labels[rollout.LabelSnapName] != "before-upgrade" || sn.Labels[rollout.LabelDescription] != "pg 15 to 16" {
		t.Errorf("snapshot %+v: want its labels to say who, name and description", sn)
	}
	if v := l.volume(t); v.AttachedTo != in.ID {
		t.Errorf("after the snapshot the volume is on %q, want %s", v.AttachedTo, in.ID)
	}

	_, err = l.dbController(l.detachedOnly).SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
	if !errors.Is(err, rollout.ErrSnapshotNeedsStop) || !errors.Is(err, compute.ErrVolumeInUse) {
		t.Fatalf("snapshot of a volume in use where the provider cannot: %v; want ErrSnapshotNeedsStop", err)
	}
	op, err = l.dbController(l.detachedOnly).SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{Stop: true})
	if err != nil || op.State != rollout.VolumeOpDone || op.Snapshot == "" {
		t.Fatalf("snapshot --stop: %+v, %v", op, err)
	}
	l.logEvents(t)
	if v, got := l.volume(t), l.instanceOf(t, img1); v.AttachedTo != in.ID || got.State != compute.Running {
		t.Errorf("after snapshot --stop the volume is on %q and %s is %s; want it back on running %s", v.AttachedTo, in.ID, got.State, in.ID)
	}
	ops, err := l.dbController().VolumeOps(t.Context(), "db")
	if err != nil || len(ops) != 3 || ops[1].State != rollout.VolumeOpFailed || ops[2].State != rollout.VolumeOpDone {
		t.Errorf("volume operations %+v, %v; want done, failed, done", ops, err)
	}
}

// TestVolumeRestore: a restore makes a new volume from the snapshot, hands it to the role's
// instance in place of the one in service (kept aside), and the next rollout moves the restored
// volume on; restoring the replaced volume puts it back as it is.
func TestVolumeRestore(t *testing.T) {
	l, img1 := dbDeployed(t)
	in, old := l.instanceOf(t, img1), l.volume(t)
	if err := l.comp.WriteMarker(t.Context(), old.ID, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	snap, err := l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.comp.WriteMarker(t.Context(), old.ID, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	l.resetEvents()
	op, err := l.dbController().RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot)
	l.logEvents(t)
	if err != nil || op.State != rollout.VolumeOpDone || op.To == nil || op.From.ID != old.ID {
		t.Fatalf("restore: %+v, %v", op, err)
	}
	restored := l.checkRestored(t, in, old, "v1")
	if l.marker(t, old.ID) != "v2" {
		t.Errorf("the replaced volume holds %q, want its data (v2) kept", l.marker(t, old.ID))
	}

	// Back to the replaced volume, as it is.
	if _, err := l.dbController().RestoreVolume(t.Context(), "db", "pgdata", old.ID); err != nil {
		t.Fatal(err)
	}
	inService, _ := l.dbVolumes(t)
	if len(inService) != 1 || inService[0].ID != old.ID || inService[0].AttachedTo != in.ID {
		t.Fatalf("after restoring the replaced volume: %+v; want %s on %s", inService, old.ID, in.ID)
	}
	if _, err := l.dbController().RestoreVolume(t.Context(), "db", "pgdata", restored.ID); err != nil {
		t.Fatal(err)
	}

	// The next rollout finds the restored volume by its labels and hands it to green.
	img2 := l.build("db")
	c := l.dbController()
	if _, err := c.Start(t.Context(), "db", rollout.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := c.Promote(t.Context(), "db")
	mustRecord(t, rec, err, rollout.Promoted)
	if v := l.volume(t); v.ID != restored.ID || v.AttachedTo != l.instanceOf(t, img2).ID || l.marker(t, v.ID) != "v1" {
		t.Errorf("after the next rollout the volume in service is %+v; want the restored %s on green", v, restored.ID)
	}

	// Blue is kept stopped for keep_old: the rollout is still in flight.
	if _, err := l.dbController().RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot); !errors.Is(err, rollout.ErrInProgress) || !strings.Contains(err.Error(), rec.ID+" is promoted") {
		t.Errorf("restore during keep_old: %v; want ErrInProgress naming %s", err, rec.ID)
	}
}

// TestVolumeOpsRefusedDuringRollout: a snapshot or restore is refused while a rollout of the role
// is in flight, naming it; a bad snapshot or volume name is refused naming what would do.
func TestVolumeOpsRefusedDuringRollout(t *testing.T) {
	l, _ := dbDeployed(t)
	snap, err := l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.dbController().RestoreVolume(t.Context(), "db", "pgdata", "snap-nope"); !errors.Is(err, rollout.ErrNoSuchSource) || !strings.Contains(err.Error(), snap.Snapshot) {
		t.Errorf("restore of an unknown snapshot: %v; want ErrNoSuchSource naming %s", err, snap.Snapshot)
	}
	if _, err := l.dbController().RestoreVolume(t.Context(), "db", "data", snap.Snapshot); err == nil || !strings.Contains(err.Error(), `no volume "data" (its volumes: pgdata)`) {
		t.Errorf("restore of an unknown volume: %v", err)
	}
	l.build("db")
	rec, err := l.dbController().Start(t.Context(), "db", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	before := l.volume(t)
	_, err = l.dbController().RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot)
	if !errors.Is(err, rollout.ErrInProgress) || !strings.Contains(err.Error(), rec.ID) {
		t.Errorf("restore during rollout %s: %v; want ErrInProgress naming it", rec.ID, err)
	}
	_, err = l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
	if !errors.Is(err, rollout.ErrInProgress) || !strings.Contains(err.Error(), rec.ID) {
		t.Errorf("snapshot during rollout %s: %v; want ErrInProgress naming it", rec.ID, err)
	}
	if v := l.volume(t); v.ID != before.ID || v.AttachedTo != before.AttachedTo {
		t.Errorf("a refused restore moved the volume: %+v, was %+v", v, before)
	}
}

// TestVolumeRestoreCrashAtEveryStep kills the restore right after each of its steps is written,
// checks that rollout commands are refused meanwhile, runs it again and checks that it converged:
// one volume labelled as the role's, holding the snapshot's data, on the running instance.
func TestVolumeRestoreCrashAtEveryStep(t *testing.T) {
	host, _ := hostname()
	dead := deadPID(t)
	for _, point := range []rollout.State{"volume-begin", "volume-create", "volume-stop", "volume-detach", "volume-relabel",
		"volume-record", "volume-userdata", "volume-start", "volume-attach"} {
		t.Run(string(point), func(t *testing.T) {
			l, img1 := dbDeployed(t)
			in, old := l.instanceOf(t, img1), l.volume(t)
			if err := l.comp.WriteMarker(t.Context(), old.ID, []byte("v1")); err != nil {
				t.Fatal(err)
			}
			snap, err := l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.comp.WriteMarker(t.Context(), old.ID, []byte("v2")); err != nil {
				t.Fatal(err)
			}
			crashing := l.dbController(func(o *rollout.Options) { o.CrashAfter, o.Owner = point, "crashed@"+host+" pid "+dead })
			if _, err := crashing.RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot); !errors.Is(err, rollout.ErrCrashed) {
				t.Fatalf("crash after %s: got %v, want the crash", point, err)
			}
			if inService, _ := l.dbVolumes(t); len(inService) > 1 {
				t.Errorf("after a crash at %s, %d volumes are labelled as the role's", point, len(inService))
			}
			l.build("db")
			if _, err := l.dbController().Start(t.Context(), "db", rollout.StartOptions{}); !errors.Is(err, rollout.ErrVolumeOpPending) || !strings.Contains(err.Error(), "drover volumes restore db pgdata "+snap.Snapshot) {
				t.Fatalf("rollout start with a restore interrupted: %v; want ErrVolumeOpPending naming the command", err)
			}
			if _, err := l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{}); !errors.Is(err, rollout.ErrVolumeOpPending) {
				t.Fatalf("snapshot with a restore interrupted: %v; want ErrVolumeOpPending", err)
			}
			st, err := l.dbController().Status(t.Context(), "db")
			var text strings.Builder
			if err != nil || st.VolumeOp == nil || st.WriteText(&text, time.Now()) != nil || !strings.Contains(text.String(), "finish it with: drover volumes restore db pgdata "+snap.Snapshot) {
				t.Fatalf("status with a restore interrupted: %+v, %v\n%s", st, err, text.String())
			}
			op, err := l.dbController().RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot)
			if err != nil || op.State != rollout.VolumeOpDone {
				t.Fatalf("rerun after a crash at %s: %+v, %v", point, op, err)
			}
			l.checkRestored(t, in, old, "v1")
			if ops, _ := l.dbController().VolumeOps(t.Context(), "db"); len(ops) != 2 {
				t.Errorf("%d volume operations, want the snapshot and one restore", len(ops))
			}
		})
	}
}

// TestVolumeRestoreReverts: an instance that fails its checks on the restored volume gets the one
// in service before back, also when the revert is killed part way; the restored one is kept aside.
func TestVolumeRestoreReverts(t *testing.T) {
	host, _ := hostname()
	dead := deadPID(t)
	for _, point := range []rollout.State{"", "volume-revert", "volume-stop", "volume-detach", "volume-relabel", "volume-userdata", "volume-attach"} {
		t.Run("crash="+string(point), func(t *testing.T) {
			l, img1 := dbDeployed(t)
			in, old := l.instanceOf(t, img1), l.volume(t)
			snap, err := l.dbController().SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
			if err != nil {
				t.Fatal(err)
			}
			l.mu.Lock()
			l.onEvent = func(e rollout.Event) { // the instance serves on its old volume only
				if e.Step == "volumes" && strings.HasPrefix(e.Message, "attach ") {
					l.setInstanceHealthy(in.ID, strings.HasPrefix(e.Message, "attach "+old.ID+" "))
				}
			}
			l.mu.Unlock()
			crashAt := func(p rollout.State) *rollout.Controller {
				return l.dbController(func(o *rollout.Options) { o.CrashAfter, o.Owner = p, "crashed@"+host+" pid "+dead })
			}
			if point != "" {
				// Killed as the revert begins, then (point) at one of its steps.
				if _, err := crashAt("volume-revert").RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot); !errors.Is(err, rollout.ErrCrashed) {
					t.Fatalf("crash as the revert begins: %v", err)
				}
				if point != "volume-revert" {
					if _, err := crashAt(point).RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot); !errors.Is(err, rollout.ErrCrashed) {
						t.Fatalf("crash after %s while reverting: %v", point, err)
					}
				}
			}
			c := l.dbController()
			op, err := c.RestoreVolume(t.Context(), "db", "pgdata", snap.Snapshot)
			if err == nil || !strings.Contains(err.Error(), "reverted") || op == nil || op.State != rollout.VolumeOpReverted {
				t.Fatalf("restore onto an instance that fails its checks: %+v, %v; want it reverted", op, err)
			}
			inService, all := l.dbVolumes(t)
			if len(inService) != 1 || inService[0].ID != old.ID || inService[0].AttachedTo != in.ID {
				t.Fatalf("after the revert: %+v; want %s back on %s", inService, old.ID, in.ID)
			}
			for _, v := range all {
				if v.ID == op.To.ID && (v.AttachedTo != "" || v.Labels[rollout.LabelRestoring] != "pgdata") {
					t.Errorf("the restored volume after the revert: %+v; want it detached, labelled restored-volume=pgdata", v)
				}
			}
		})
	}
}

// TestVolumeSnapshotStopCrashAtEveryStep: snapshot --stop killed after each step converges on a
// rerun: one snapshot of the operation, the volume back on the running instance.
func TestVolumeSnapshotStopCrashAtEveryStep(t *testing.T) {
	host, _ := hostname()
	dead := deadPID(t)
	for _, point := range []rollout.State{"volume-begin", "volume-stop", "volume-detach", "volume-snapshot", "volume-start", "volume-attach"} {
		t.Run(string(point), func(t *testing.T) {
			l, img1 := dbDeployed(t)
			in := l.instanceOf(t, img1)
			crashing := l.dbController(l.detachedOnly, func(o *rollout.Options) { o.CrashAfter, o.Owner = point, "crashed@"+host+" pid "+dead })
			if _, err := crashing.SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{Stop: true, Name: "n"}); !errors.Is(err, rollout.ErrCrashed) {
				t.Fatalf("crash after %s: got %v, want the crash", point, err)
			}
			op, err := l.dbController(l.detachedOnly).SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{Stop: true})
			if err != nil || op.State != rollout.VolumeOpDone || op.Name != "n" {
				t.Fatalf("rerun after a crash at %s: %+v, %v", point, op, err)
			}
			snaps, _ := l.comp.VolumeSnapshots(t.Context(), compute.Selector{rollout.LabelVolumeOp: op.ID})
			if len(snaps) != 1 || snaps[0].ID != op.Snapshot {
				t.Errorf("snapshots of %s: %+v; want exactly %s", op.ID, snaps, op.Snapshot)
			}
			if v, got := l.volume(t), l.instanceOf(t, img1); v.AttachedTo != in.ID || got.State != compute.Running {
				t.Errorf("after a crash at %s and a rerun: volume on %q, %s is %s", point, v.AttachedTo, in.ID, got.State)
			}
		})
	}
}

// noRelabel is a provider with volumes and stop/start but neither VolumeLabeler nor
// UserDataEditor (DigitalOcean's case).
type noRelabel struct {
	compute.Provider
	volumesOnly // not compute.Volumes: a field named Volumes would hide the method
	compute.Stopper
}

type volumesOnly = compute.Volumes

// TestVolumeRestoreNeedsCapabilities: a restore on a provider that cannot relabel a volume nor edit
// a stopped instance's user-data is refused before anything is done, naming what it lacks; a
// snapshot there works.
func TestVolumeRestoreNeedsCapabilities(t *testing.T) {
	l, _ := dbDeployed(t)
	limited := func(o *rollout.Options) {
		o.Compute = func(context.Context, string) (compute.Provider, error) { return noRelabel{l.comp, l.comp, l.comp}, nil }
	}
	op, err := l.dbController(limited).SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{})
	if err != nil {
		t.Fatalf("snapshot without the restore capabilities: %v", err)
	}
	before := l.volume(t)
	_, err = l.dbController(limited).RestoreVolume(t.Context(), "db", "pgdata", op.Snapshot)
	if err == nil || !strings.Contains(err.Error(), "compute.VolumeLabeler") || !strings.Contains(err.Error(), "compute.UserDataEditor") {
		t.Fatalf("restore without the capabilities: %v; want a refusal naming both", err)
	}
	if v := l.volume(t); v.ID != before.ID || v.AttachedTo != before.AttachedTo {
		t.Errorf("a refused restore changed the volume: %+v, was %+v", v, before)
	}
	if ops, _ := l.dbController().VolumeOps(t.Context(), "db"); len(ops) != 1 {
		t.Errorf("%d volume operations recorded, want only the snapshot", len(ops))
	}
}
