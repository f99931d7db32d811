package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/rollout"
)

// TestVolumesListShow: drover volumes list and show report the example db role's volume as the
// lab provider has it: not created before the first rollout, then its ID, size and snapshots, in
// text and in JSON; a role without volumes is a usage error.
func TestVolumesListShow(t *testing.T) {
	fleetFile := homelabFleet(t)
	state := filepath.Join(t.TempDir(), "state")
	list := func(args ...string) (int, string, string) {
		return drover(t, nil, append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	}
	code, stdout, stderr := list("volumes", "list")
	if code != exitOK || !strings.Contains(stdout, "ROLE") || !strings.Contains(stdout, "db") || !strings.Contains(stdout, "pgdata") || !strings.Contains(stdout, "/var/lib/postgresql") {
		t.Fatalf("list before any rollout: exit %d\n%s%s", code, stdout, stderr)
	}
	lab, err := qemu.New(qemu.NewDefaultConfig(func(string) (string, bool) { return "", false }), state)
	if err != nil {
		t.Fatal(err)
	}
	sel := map[string]string{rollout.LabelFleet: "homelab", rollout.LabelRole: "db", rollout.LabelVolume: "pgdata"}
	v, err := lab.CreateVolume(context.Background(), compute.VolumeSpec{Token: "t", Name: "db-pgdata", SizeGiB: 2, Labels: sel})
	if err != nil {
		t.Fatal(err)
	}
	snapLabels := map[string]string{rollout.LabelRollout: "db-2-abcdef"}
	for k, val := range sel {
		snapLabels[k] = val
	}
	sn, err := lab.SnapshotVolume(context.Background(), v.ID, "s", snapLabels)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = list("volumes", "show", "db")
	if code != exitOK || !strings.Contains(stdout, "db/pgdata: "+v.ID+", 2 GiB on /var/lib/postgresql, attached to -") ||
		!strings.Contains(stdout, sn.ID) || !strings.Contains(stdout, "db-2-abcdef") {
		t.Fatalf("show: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = list("--output", "json", "volumes", "list")
	var views []volumeView
	if code != exitOK || json.Unmarshal([]byte(stdout), &views) != nil || len(views) != 1 || views[0].ID != v.ID ||
		views[0].GuestPath != v.GuestPath || len(views[0].Snapshots) != 1 || views[0].Snapshots[0].Rollout != "db-2-abcdef" {
		t.Fatalf("list --output json: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := list("volumes", "show", "web"); code != exitUsage || !strings.Contains(stderr, `role "web" has no volume`) {
		t.Errorf("show of a role without volumes: exit %d\n%s", code, stderr)
	}
}
