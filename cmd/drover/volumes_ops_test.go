package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/rollout"
)

// qemuIO runs qemu-io on a volume's qcow2 file: a guest's write (pattern), or a read that fails
// when the data is not the pattern.
func qemuIO(t *testing.T, path, op string, pattern byte) error {
	t.Helper()
	args := []string{"-f", "qcow2", "-c", fmt.Sprintf("%s -P 0x%02x 0 64k", op, pattern), path}
	if op == "read" {
		args = append([]string{"-r"}, args...)
	}
	out, err := exec.Command("qemu-io", args...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "verification failed") {
		return fmt.Errorf("qemu-io %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// TestVolumesSnapshotRestore drives drover volumes snapshot and restore against the lab's real
// volume code (qcow2 files and qemu-img; no VM: the volume is attached nowhere, as before the
// role's first rollout): the snapshot is listed with its name and who took it; the restore puts
// the snapshot's data in service on a new volume and sets the old one aside, listed by show and
// put back by restoring its ID; bad values are usage errors naming what would do; --output json
// carries the same facts.
func TestVolumesSnapshotRestore(t *testing.T) {
	fleetFile := homelabFleet(t)
	state := filepath.Join(t.TempDir(), "state")
	run := func(args ...string) (int, string, string) {
		// A volume operation takes the role's lock as a rollout does, which opens its cutover.
		return drover(t, map[string]string{"DROVER_TSIG_SECRET": "c2VjcmV0"}, append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	}
	lab, err := qemu.New(qemu.NewDefaultConfig(func(string) (string, bool) { return "", false }), state)
	if err != nil {
		t.Fatal(err)
	}
	sel := map[string]string{rollout.LabelFleet: "homelab", rollout.LabelRole: "db", rollout.LabelVolume: "pgdata"}
	old, err := lab.CreateVolume(context.Background(), compute.VolumeSpec{Token: "t", Name: "db-pgdata", SizeGiB: 1, Labels: sel})
	if err != nil {
		t.Fatal(err)
	}
	if err := qemuIO(t, lab.VolumePath(old.ID), "write", 0x61); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run("--output", "json", "volumes", "snapshot", "db", "pgdata", "--name", "before-pg16", "--description", "the rows of v1")
	var snap struct {
		OK        bool              `json:"ok"`
		Snapshot  string            `json:"snapshot"`
		Operation *rollout.VolumeOp `json:"operation"`
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &snap) != nil || !snap.OK || snap.Snapshot == "" || snap.Operation.State != rollout.VolumeOpDone {
		t.Fatalf("snapshot --output json: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := qemuIO(t, lab.VolumePath(old.ID), "write", 0x62); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run("volumes", "show", "db")
	if code != exitOK || !strings.Contains(stdout, snap.Snapshot) || !strings.Contains(stdout, "before-pg16") || !strings.Contains(stdout, "TAKEN BY") {
		t.Fatalf("show after the snapshot: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = run("volumes", "restore", "db", "pgdata", snap.Snapshot)
	if code != exitOK || !strings.Contains(stdout, "db/pgdata: restored from "+snap.Snapshot) || !strings.Contains(stdout, old.ID+" is set aside") {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run("--output", "json", "volumes", "show", "db")
	var views []volumeView
	if code != exitOK || json.Unmarshal([]byte(stdout), &views) != nil || len(views) != 1 {
		t.Fatalf("show --output json after the restore: exit %d\n%s%s", code, stdout, stderr)
	}
	v := views[0]
	if v.ID == "" || v.ID == old.ID || len(v.SetAside) != 1 || v.SetAside[0].ID != old.ID || v.SetAside[0].Why != "replaced" || snapshotNamed(v, "before-pg16") != snap.Snapshot {
		t.Fatalf("after the restore: %+v; want a new volume in service, %s set aside, the snapshot listed", v, old.ID)
	}
	if err := qemuIO(t, lab.VolumePath(v.ID), "read", 0x61); err != nil {
		t.Errorf("the restored volume does not hold the snapshot's data: %v", err)
	}
	if err := qemuIO(t, lab.VolumePath(old.ID), "read", 0x62); err != nil {
		t.Errorf("the set-aside volume lost its data: %v", err)
	}
	if _, stdout, _ := run("volumes", "show", "db"); !strings.Contains(stdout, "SET ASIDE") || !strings.Contains(stdout, old.ID) {
		t.Errorf("show does not list the set-aside volume:\n%s", stdout)
	} else {
		t.Logf("drover volumes show db:\n%s", stdout)
	}

	// Undo: the set-aside volume back, as it is.
	code, stdout, stderr = run("--output", "json", "volumes", "restore", "db", "pgdata", old.ID)
	var undo struct {
		OK        bool              `json:"ok"`
		Source    string            `json:"source"`
		Operation *rollout.VolumeOp `json:"operation"`
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &undo) != nil || !undo.OK || undo.Source != old.ID ||
		undo.Operation.State != rollout.VolumeOpDone || undo.Operation.From.ID != v.ID || undo.Operation.To == nil || undo.Operation.To.ID != old.ID {
		t.Fatalf("restore --output json of the set-aside volume: exit %d\n%s%s", code, stdout, stderr)
	}
	vols, err := lab.Volumes(context.Background(), sel)
	if err != nil || len(vols) != 1 || vols[0].ID != old.ID {
		t.Fatalf("volumes labelled as db's pgdata after the undo: %+v, %v; want only %s", vols, err, old.ID)
	}

	// The restored volume, set aside by the undo, deleted; the one in service is refused.
	if code, stdout, stderr := run("volumes", "delete", "db", "pgdata", old.ID); code != exitFailure || !strings.Contains(stderr, "in service") {
		t.Errorf("delete of the volume in service: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := run("volumes", "delete", "db", "pgdata", v.ID); code != exitOK || !strings.Contains(stdout, "volume "+v.ID+" deleted") {
		t.Errorf("delete of the set-aside volume: exit %d\n%s%s", code, stdout, stderr)
	}
	if got, _ := lab.Volumes(context.Background(), compute.Selector{rollout.LabelRole: "db"}); len(got) != 1 || got[0].ID != old.ID {
		t.Errorf("after the delete the volumes of db are %+v, want only %s", got, old.ID)
	}

	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"volumes", "restore", "db", "pgdata", "snap-000000000000"}, exitUsage, []string{`"snap-000000000000"`, "want one of: " + snap.Snapshot, "drover volumes show db"}},
		{[]string{"volumes", "restore", "db", "data", snap.Snapshot}, exitUsage, []string{`role "db" has no volume "data"`, "its volumes: pgdata"}},
		{[]string{"volumes", "snapshot", "web", "pgdata"}, exitUsage, []string{`role "web" has no volume`}},
		{[]string{"volumes", "snapshot", "dbx", "pgdata"}, exitUsage, []string{`no role "dbx"`, "did you mean db"}},
		{[]string{"volumes", "snapshot", "db", "pgdata", "--name", "two words"}, exitUsage, []string{`--name "two words"`, "letters, digits"}},
		{[]string{"volumes", "restore", "db", "pgdata"}, exitUsage, []string{"needs ROLE VOLUME SNAPSHOT"}},
	} {
		code, stdout, stderr := run(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tc.args, code, tc.code, stdout, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
	}
	for _, cmd := range []string{"snapshot", "restore"} {
		if code, stdout, _ := run("volumes", cmd, "--help"); code != exitOK || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "killed part way") {
			t.Errorf("drover volumes %s --help: exit %d\n%s", cmd, code, stdout)
		}
	}
}

// snapshotNamed is the ID of v's snapshot called name, "" when none is.
func snapshotNamed(v volumeView, name string) string {
	for _, s := range v.Snapshots {
		if s.Name == name {
			return s.ID
		}
	}
	return ""
}
