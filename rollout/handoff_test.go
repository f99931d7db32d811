package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

// dbRole is a role with a volume on the lab: one instance, an http check, the failover IP.
func dbRole(mod ...func(*fleet.Deploy)) *fleet.Role {
	r := webRole(func(d *fleet.Deploy) {
		d.Count, d.Strategy = 1, "handoff"
		d.Volumes = []fleet.Volume{{Name: "pgdata", SizeGiB: 1, Mount: "/var/lib/postgresql", FS: "ext4", SnapshotBefore: true, Owner: "postgres:postgres", Mode: 0o700}}
	})
	r.Name = "db"
	for _, m := range mod {
		m(r.Deploy)
	}
	return r
}

// bootVolumes stands in for cmd's bootdata writer: the volumes as JSON, after the role. Given
// user-data it wrote before (a restore edits an instance's), it replaces the volumes.
func bootVolumes(ud []byte, role string, vols []rollout.BootVolume) ([]byte, error) {
	if len(ud) > 0 {
		var prev struct{ Role string }
		if err := json.Unmarshal(ud, &prev); err != nil || prev.Role != role {
			return nil, errors.New("test: no credentials expected")
		}
	}
	return json.Marshal(map[string]any{"role": role, "volumes": vols})
}

// waitForVolumes writes to an instance's console what drover-boot prints while it waits for each
// volume its user-data lists, once the lab's boot hook (the login with the user-data's credential)
// passes; a failed login is written instead, and no wait.
func (l *lab) waitForVolumes(id string, userData []byte) error {
	l.mu.Lock()
	b, boot := l.backends[id], l.boot
	l.mu.Unlock()
	f, err := os.OpenFile(b.console, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if boot != nil {
		if err := boot(id, userData); err != nil {
			fmt.Fprintf(f, "[    3.000000] drover-boot: failed: %v\n", err)
			return nil
		}
	}
	var ud struct {
		Volumes []struct{ Name, GuestPath string }
	} // the test's JSON or bootdata's
	if len(userData) == 0 || json.Unmarshal(userData, &ud) != nil {
		return nil
	}
	for _, v := range ud.Volumes {
		fmt.Fprintf(f, "[    4.000000] drover-boot: waiting for volume %s at %s (0s so far, giving up after 30m0s); the services start once it is mounted\n", v.Name, v.GuestPath)
	}
	return nil
}

func (l *lab) dbController(mod ...func(*rollout.Options)) *rollout.Controller {
	return l.controller(append([]func(*rollout.Options){func(o *rollout.Options) { o.BootVolumes = bootVolumes }}, mod...)...)
}

// volume is the role's one volume as the provider reports it.
func (l *lab) volume(t *testing.T) compute.Volume {
	t.Helper()
	vols, err := l.comp.Volumes(context.Background(), compute.Selector{rollout.LabelRole: "db", rollout.LabelVolume: "pgdata", rollout.LabelFleet: "lab"})
	if err != nil || len(vols) != 1 {
		t.Fatalf("volumes of db: %v, %v; want one", vols, err)
	}
	return vols[0]
}

// instanceOf is the role's instance of an image (any state but terminated).
func (l *lab) instanceOf(t *testing.T, identity string) compute.Instance {
	t.Helper()
	ins := l.running("db")[identity]
	if len(ins) != 1 {
		t.Fatalf("instances of %s: %d, want 1", l.name(identity), len(ins))
	}
	return ins[0]
}

// dbDeployed is a lab where image 1 of db is live, holding the volume.
func dbDeployed(t *testing.T, mod ...func(*fleet.Deploy)) (*lab, string) {
	t.Helper()
	l := newLab(t, dbRole(mod...))
	img1 := l.build("db")
	c := l.dbController()
	rec, err := c.Start(t.Context(), "db", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	blue := l.instanceOf(t, img1)
	if v := l.volume(t); v.AttachedTo != blue.ID {
		t.Fatalf("after the first deploy's start the volume is on %q, want green %s", v.AttachedTo, blue.ID)
	}
	var ud struct{ Volumes []rollout.BootVolume }
	if err := json.Unmarshal(l.userData[blue.ID], &ud); err != nil || len(ud.Volumes) != 1 || ud.Volumes[0].GuestPath != l.volume(t).GuestPath || ud.Volumes[0].Mount != "/var/lib/postgresql" {
		t.Fatalf("user-data %s (%v) does not list the volume at its guest path %s", l.userData[blue.ID], err, l.volume(t).GuestPath)
	}
	rec, err = c.Promote(t.Context(), "db")
	mustRecord(t, rec, err, rollout.Retired)
	l.resetEvents()
	return l, img1
}

// TestHandoffPromoteAndRollback: start boots green beside blue without the volume; promote stops
// blue, moves the volume (with a snapshot first) and cuts over; rollback moves it back and starts
// blue again.
func TestHandoffPromoteAndRollback(t *testing.T) {
	l, img1 := dbDeployed(t)
	img2 := l.build("db")
	c := l.dbController()
	rec, err := c.Start(t.Context(), "db", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	blue, green := l.instanceOf(t, img1), l.instanceOf(t, img2)
	if v := l.volume(t); v.AttachedTo != blue.ID || blue.State != compute.Running {
		t.Fatalf("at ready the volume is on %q and blue is %s; want it still on running blue %s", v.AttachedTo, blue.State, blue.ID)
	}
	if _, himg, _ := l.holder(); himg != img1 {
		t.Fatalf("at ready traffic goes to %s, want blue", l.name(himg))
	}

	rec, err = c.Promote(t.Context(), "db")
	mustRecord(t, rec, err, rollout.Promoted)
	l.logEvents(t)
	if v := l.volume(t); v.AttachedTo != green.ID {
		t.Fatalf("after promote the volume is on %q, want green %s", v.AttachedTo, green.ID)
	}
	if b := l.instanceOf(t, img1); b.State != compute.Stopped {
		t.Errorf("after promote blue is %s, want stopped (kept for keep_old)", b.State)
	}
	if _, himg, _ := l.holder(); himg != img2 {
		t.Errorf("after promote traffic goes to %s, want green", l.name(himg))
	}
	hp := rec.Progress.Handoff
	if hp == nil || hp.Holder != green.ID || len(hp.Snapshots) != 1 || len(hp.Volumes) != 1 {
		t.Fatalf("handoff progress %+v: want green as holder and one snapshot", hp)
	}
	snaps, err := l.comp.VolumeSnapshots(t.Context(), compute.Selector{rollout.LabelRollout: rec.ID})
	if err != nil || len(snaps) != 1 || snaps[0].ID != hp.Snapshots[0] || snaps[0].VolumeID != hp.Volumes[0].ID {
		t.Errorf("snapshots of the rollout: %+v, %v; want the one recorded", snaps, err)
	}

	rec, err = c.Rollback(t.Context(), "db")
	mustRecord(t, rec, err, rollout.RolledBack)
	if v := l.volume(t); v.AttachedTo != blue.ID {
		t.Fatalf("after rollback the volume is on %q, want blue %s", v.AttachedTo, blue.ID)
	}
	if b := l.instanceOf(t, img1); b.State != compute.Running {
		t.Errorf("after rollback blue is %s, want running", b.State)
	}
	if len(l.running("db")[img2]) != 0 {
		t.Error("green not destroyed after the rollback")
	}
	if _, himg, _ := l.holder(); himg != img1 {
		t.Errorf("after rollback traffic goes to %s, want blue", l.name(himg))
	}
}

// TestHandoffGreenFailsWithTheData: a green whose service cannot start on the data fails its
// checks after the volume came; the volume goes back to blue, which is started again and serves.
func TestHandoffGreenFailsWithTheData(t *testing.T) {
	l, img1 := dbDeployed(t)
	img2 := l.build("db")
	l.setHealthy(img2, false)
	c := l.dbController()
	rec, err := c.Start(t.Context(), "db", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready) // green is not checked without its data
	rec, err = c.Promote(t.Context(), "db")
	if err == nil || rec == nil || rec.State != rollout.RolledBack || rec.Health == nil {
		t.Fatalf("promote of a green that fails with the data: %+v, %v; want rolled back with the failure", rec, err)
	}
	blue := l.instanceOf(t, img1)
	if v := l.volume(t); v.AttachedTo != blue.ID || blue.State != compute.Running {
		t.Fatalf("volume on %q, blue %s; want it back on running blue %s", v.AttachedTo, blue.State, blue.ID)
	}
	if _, himg, _ := l.holder(); himg != img1 {
		t.Errorf("traffic on %s, want blue", l.name(himg))
	}
	if len(l.running("db")[img2]) != 0 {
		t.Error("failed green not destroyed")
	}
}

// TestHandoffCrashAtEveryStep kills the controller right after each transition and each step of the
// handoff is written, in a promote and in a rollback, runs the command again with a fresh
// controller, and checks that it converges: the volume on exactly the instance that should serve,
// which runs, and traffic there.
func TestHandoffCrashAtEveryStep(t *testing.T) {
	host, _ := hostname()
	dead := deadPID(t)
	promotePoints := []rollout.State{rollout.CuttingOver, "handoff-holder", "handoff-stop", "handoff-detach", "handoff-snapshot", "handoff-attach", rollout.Draining, rollout.Promoted}
	rollbackPoints := []rollout.State{rollout.RolledBack, "handoff-holder", "handoff-userdata", "handoff-start", "handoff-stop", "handoff-detach", "handoff-attach"}
	for _, tc := range []struct {
		cmd    string
		points []rollout.State
	}{{"promote", promotePoints}, {"rollback", rollbackPoints}} {
		for _, point := range tc.points {
			t.Run(tc.cmd+"/"+string(point), func(t *testing.T) {
				l, img1 := dbDeployed(t)
				img2 := l.build("db")
				c := l.dbController()
				if _, err := c.Start(t.Context(), "db", rollout.StartOptions{}); err != nil {
					t.Fatal(err)
				}
				run := func(c *rollout.Controller) (*rollout.Record, error) {
					if tc.cmd == "promote" {
						return c.Promote(t.Context(), "db")
					}
					return c.Rollback(t.Context(), "db")
				}
				if tc.cmd == "rollback" {
					if _, err := c.Promote(t.Context(), "db"); err != nil {
						t.Fatal(err)
					}
				}
				crashing := l.dbController(func(o *rollout.Options) { o.CrashAfter, o.Owner = point, "crashed@"+host+" pid "+dead })
				if _, err := run(crashing); !errors.Is(err, rollout.ErrCrashed) {
					t.Fatalf("crash after %s: got %v, want the crash", point, err)
				}
				rec, err := run(l.dbController())
				wantState, serving := rollout.Promoted, img2
				if tc.cmd == "rollback" {
					wantState, serving = rollout.RolledBack, img1
				}
				if err != nil || rec.State != wantState {
					t.Fatalf("rerun after a crash at %s: %+v, %v; want %s", point, rec, err, wantState)
				}
				in := l.instanceOf(t, serving)
				if v := l.volume(t); v.AttachedTo != in.ID || in.State != compute.Running {
					t.Errorf("after a crash at %s and a rerun: volume on %q, %s is %s; want it on running %s", point, v.AttachedTo, l.name(serving), in.State, in.ID)
				}
				if _, himg, _ := l.holder(); himg != serving {
					t.Errorf("after a crash at %s and a rerun: traffic on %s, want %s", point, l.name(himg), l.name(serving))
				}
			})
		}
	}
}

// TestHandoffVolumeGoneIsRefused: a volume the live rollout had, gone, is not replaced by a blank one.
func TestHandoffVolumeGoneIsRefused(t *testing.T) {
	l, _ := dbDeployed(t)
	l.build("db")
	v := l.volume(t)
	// Take it away as a person would: stop its holder, detach, delete.
	if err := l.comp.Stop(t.Context(), v.AttachedTo); err != nil {
		t.Fatal(err)
	}
	if err := l.comp.DetachVolume(t.Context(), v.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.comp.DeleteVolume(t.Context(), v.ID); err != nil {
		t.Fatal(err)
	}
	_, err := l.dbController().Start(t.Context(), "db", rollout.StartOptions{})
	if err == nil || !strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("start with the volume gone: %v; want a refusal that names the snapshot way back", err)
	}
	vols, _ := l.comp.Volumes(t.Context(), compute.Selector{rollout.LabelRole: "db"})
	if len(vols) != 0 {
		t.Errorf("a blank volume was made in place of the lost one: %+v", vols)
	}
}

// TestHandoffPlan: the plan of a first deploy attaches the new volume at boot; the plan of a later
// rollout says where the downtime is: blue's stop, the detach, the snapshot, the attach.
func TestHandoffPlan(t *testing.T) {
	l := newLab(t, dbRole())
	l.build("db")
	text := func() string {
		t.Helper()
		p, err := l.dbController().Plan(t.Context(), []string{"db"}, rollout.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := p.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	first := text()
	for _, want := range []string{"find volume(s) pgdata (1GiB on /var/lib/postgresql) by labels, or create them blank", "attach the volume(s) to green"} {
		if !strings.Contains(first, want) {
			t.Errorf("first deploy plan lacks %q:\n%s", want, first)
		}
	}
	c := l.dbController()
	if _, err := c.Start(t.Context(), "db", rollout.StartOptions{AutoPromote: new(true)}); err != nil {
		t.Fatal(err)
	}
	l.build("db")
	next := text()
	for _, want := range []string{"drover-boot waits for the volume(s) and starts no service", "stop blue", "detach the volume(s) from blue",
		"snapshot volume pgdata", "hands the volume(s) back to blue", "keep blue stopped for 15m0s"} {
		if !strings.Contains(next, want) {
			t.Errorf("rollout plan lacks %q:\n%s", want, next)
		}
	}
	t.Logf("plan:\n%s", next)
}
