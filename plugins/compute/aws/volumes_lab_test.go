package aws_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
)

// volumeLab is the fake, a provider on it and two running instances to move volumes between.
func volumeLab(t *testing.T, opts awslab.Options) (*lab, *aws.Provider, [2]string) {
	t.Helper()
	l := newLab(t, opts)
	p := l.provider(t)
	img := publishImage(t, p)
	var ids [2]string
	for i, name := range []string{"blue", "green"} {
		in, err := p.Launch(t.Context(), compute.Spec{Token: "vol-test/" + name, Name: name, Image: img, Labels: map[string]string{"role": "db"}})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = in.ID
	}
	return l, p, ids
}

// TestVolumesEBS goes through compute.Volumes on the fake and checks what is EBS's own beyond
// computetest.RunVolumes (TestVolumesContract): gp3 in the subnet's zone, the NVMe GuestPath,
// root volumes never listed, a volume held elsewhere refused without calling AttachVolume, a
// pending snapshot restored once completed.
func TestVolumesEBS(t *testing.T) {
	l, p, ins := volumeLab(t, awslab.Options{SnapshotPendingPolls: 2})
	ctx := t.Context()
	spec := compute.VolumeSpec{Token: "db/data/1", Name: "db-data", SizeGiB: 2, Labels: map[string]string{"role": "db", "volume": "data"}}
	v, err := p.CreateVolume(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	serial := strings.Replace(v.ID, "-", "", 1)
	if v.SizeGiB != 2 || v.AttachedTo != "" || v.Name != "db-data" || v.Labels["volume"] != "data" ||
		v.GuestPath != "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"+serial {
		t.Fatalf("CreateVolume: %+v", v)
	}
	again, err := p.CreateVolume(ctx, spec)
	if err != nil || again.ID != v.ID {
		t.Fatalf("CreateVolume again with the token: %v %+v, want %s", err, again, v.ID)
	}
	for _, fv := range l.cloud.Volumes() {
		if fv.ID == v.ID && (fv.VolumeType != "gp3" || fv.Zone != "us-east-1a") {
			t.Errorf("the fake holds %+v, want gp3 in us-east-1a (the subnet's zone)", fv)
		}
	}
	if _, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "x", SizeGiB: 0}); err == nil {
		t.Error("CreateVolume of 0 GiB: no error")
	}
	list, err := p.Volumes(ctx, compute.Selector{"role": "db"})
	if err != nil || len(list) != 1 || list[0].ID != v.ID {
		t.Fatalf("Volumes(role=db): %v %+v, want only %s (no root volume)", err, list, v.ID)
	}
	if list, _ := p.Volumes(ctx, compute.Selector{"role": "web"}); len(list) != 0 {
		t.Fatalf("Volumes(role=web): %+v, want none", list)
	}

	if _, err := p.AttachVolume(ctx, "vol-0123456789abcdef0", ins[0]); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("AttachVolume of an unknown volume: %v, want ErrNotFound", err)
	}
	if _, err := p.AttachVolume(ctx, v.ID, "i-0123456789abcdef0"); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("AttachVolume to an unknown instance: %v, want ErrNotFound", err)
	}
	got, err := p.AttachVolume(ctx, v.ID, ins[0])
	if err != nil || got.AttachedTo != ins[0] {
		t.Fatalf("AttachVolume to blue: %v %+v", err, got)
	}
	if got, err := p.AttachVolume(ctx, v.ID, ins[0]); err != nil || got.AttachedTo != ins[0] {
		t.Fatalf("AttachVolume to blue again: %v %+v, want nothing done", err, got)
	}
	before := attachCalls(l)
	if _, err := p.AttachVolume(ctx, v.ID, ins[1]); !errors.Is(err, compute.ErrVolumeInUse) {
		t.Fatalf("AttachVolume to green while on blue: %v, want ErrVolumeInUse", err)
	}
	if n := attachCalls(l); n != before {
		t.Errorf("AttachVolume to green while on blue called EC2's AttachVolume (%d calls, had %d): it must refuse before", n, before)
	}
	if err := p.DeleteVolume(ctx, v.ID); !errors.Is(err, compute.ErrVolumeInUse) {
		t.Fatalf("DeleteVolume while attached: %v, want ErrVolumeInUse", err)
	}
	snap, err := p.SnapshotVolume(ctx, v.ID, "db/data/snap-1", map[string]string{"role": "db"})
	if err != nil || snap.VolumeID != v.ID || snap.SizeGiB != 2 || snap.State != "pending" {
		t.Fatalf("SnapshotVolume: %v %+v", err, snap)
	}
	if s2, err := p.SnapshotVolume(ctx, v.ID, "db/data/snap-1", map[string]string{"role": "db"}); err != nil || s2.ID != snap.ID {
		t.Fatalf("SnapshotVolume again with the token: %v %+v, want %s", err, s2, snap.ID)
	}
	if err := p.DetachVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.DetachVolume(ctx, v.ID); err != nil {
		t.Fatalf("DetachVolume of a detached volume: %v, want nil", err)
	}
	if got, err := p.AttachVolume(ctx, v.ID, ins[1]); err != nil || got.AttachedTo != ins[1] {
		t.Fatalf("AttachVolume to green after the detach: %v %+v", err, got)
	}

	snaps, err := p.VolumeSnapshots(ctx, compute.Selector{"role": "db"})
	if err != nil || len(snaps) != 1 || snaps[0].ID != snap.ID {
		t.Fatalf("VolumeSnapshots: %v %+v", err, snaps)
	}
	if _, err := p.RestoreVolume(ctx, snap.ID, compute.VolumeSpec{Token: "r0", SizeGiB: 1}); err == nil {
		t.Error("RestoreVolume below the snapshot's size: no error")
	}
	if _, err := p.RestoreVolume(ctx, "snap-0123456789abcdef0", compute.VolumeSpec{Token: "r1"}); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("RestoreVolume of an unknown snapshot: %v, want ErrNotFound", err)
	}
	r, err := p.RestoreVolume(ctx, snap.ID, compute.VolumeSpec{Token: "db/data/restore-1", Name: "db-data", Labels: map[string]string{"role": "db", "volume": "restored"}})
	if err != nil || r.SizeGiB != 2 || r.ID == v.ID {
		t.Fatalf("RestoreVolume: %v %+v", err, r)
	}
	if r2, err := p.RestoreVolume(ctx, snap.ID, compute.VolumeSpec{Token: "db/data/restore-1"}); err != nil || r2.ID != r.ID {
		t.Fatalf("RestoreVolume again with the token: %v %+v, want %s", err, r2, r.ID)
	}

	if err := p.DetachVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{v.ID, r.ID} {
		if err := p.DeleteVolume(ctx, id); err != nil {
			t.Fatalf("DeleteVolume %s: %v", id, err)
		}
		if err := p.DeleteVolume(ctx, id); err != nil {
			t.Fatalf("DeleteVolume %s again: %v, want nil", id, err)
		}
	}
	if list, err := p.Volumes(ctx, nil); err != nil || len(list) != 0 {
		t.Fatalf("Volumes after deleting both: %v %+v", err, list)
	}
	if err := p.DetachVolume(ctx, v.ID); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("DetachVolume of a deleted volume: %v, want ErrNotFound", err)
	}
	for range 2 {
		if err := p.DeleteVolumeSnapshot(ctx, snap.ID); err != nil {
			t.Fatal(err)
		}
	}
	if snaps, _ := p.VolumeSnapshots(ctx, nil); len(snaps) != 0 {
		t.Fatalf("VolumeSnapshots after the delete: %+v", snaps)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.CreateVolume(cancelled, compute.VolumeSpec{Token: "late", SizeGiB: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateVolume with a done context: %v", err)
	}
	if list, _ := p.Volumes(ctx, nil); len(list) != 0 {
		t.Errorf("CreateVolume with a done context made %+v", list)
	}
}

// TestVolumesFaultsAWS: EC2 throttling AttachVolume, and a DetachVolume answered IncorrectState
// (the volume is detaching already, as after a lost answer) are survived.
func TestVolumesFaultsAWS(t *testing.T) {
	l, p, ins := volumeLab(t, awslab.Options{})
	ctx := t.Context()
	v, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "db/data/1", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	l.cloud.Fail(awslab.Fault{Service: "ec2", Action: "AttachVolume", Status: 503, Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Times: 3})
	start := time.Now()
	if got, err := p.AttachVolume(ctx, v.ID, ins[0]); err != nil || got.AttachedTo != ins[0] {
		t.Fatalf("AttachVolume through 3 throttled answers: %v %+v", err, got)
	}
	t.Logf("AttachVolume through 3 RequestLimitExceeded answers: %v (the EC2 client's adaptive rate backs off)", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	l.cloud.Fail(awslab.Fault{Service: "ec2", Action: "DetachVolume", Status: 400, Code: "IncorrectState", Message: "Volume '" + v.ID + "' is in the 'detaching' state.", Times: 1})
	// A provider of its own: the first one's client-side rate is still low after the throttling.
	if err := l.provider(t).DetachVolume(ctx, v.ID); err != nil {
		t.Fatalf("DetachVolume through IncorrectState: %v", err)
	}
	t.Logf("DetachVolume through one IncorrectState: %v", time.Since(start).Round(time.Millisecond))
	for _, fv := range l.cloud.Volumes() {
		if fv.ID == v.ID && (fv.State != "available" || fv.Instance != "") {
			t.Fatalf("after DetachVolume the fake holds %+v, want it available", fv)
		}
	}
}

// TestVolumeZoneAWS: without a subnet the block's zone is where volumes are made and instances
// launched; with neither, CreateVolume says what to set.
func TestVolumeZoneAWS(t *testing.T) {
	l := newLab(t, awslab.Options{})
	p := l.provider(t, func(c *aws.Config) { c.SubnetID = "" })
	if _, err := p.CreateVolume(t.Context(), compute.VolumeSpec{Token: "t", SizeGiB: 1}); err == nil || !strings.Contains(err.Error(), "zone") {
		t.Fatalf("CreateVolume with neither zone nor subnet: %v, want an error naming zone", err)
	}
	p = l.provider(t, func(c *aws.Config) { c.SubnetID, c.Zone = "", "us-east-1b" })
	if _, err := p.CreateVolume(t.Context(), compute.VolumeSpec{Token: "t", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	if vs := l.cloud.Volumes(); len(vs) != 1 || vs[0].Zone != "us-east-1b" {
		t.Fatalf("volumes %+v, want one in us-east-1b", vs)
	}
	bad := &aws.Config{Region: "us-east-1", InstanceType: "t3.micro", Zone: "eu-west-1a"}
	if err := bad.Validate(); err == nil {
		t.Error("Validate of zone eu-west-1a in us-east-1: no error")
	}
}

func attachCalls(l *lab) int {
	n := 0
	for _, r := range l.cloud.Requests() {
		if r.Action == "AttachVolume" {
			n++
		}
	}
	return n
}

// volumePath is the data file of volume id in the fake.
func (l *lab) volumePath(id string) (string, error) {
	for _, v := range l.cloud.Volumes() {
		if v.ID == id {
			return v.Path, nil
		}
	}
	return "", fmt.Errorf("the fake has no volume %s", id)
}

// writeVolume writes data at the start of the volume, as a guest would on its block device.
func (l *lab) writeVolume(_ context.Context, id string, data []byte) error {
	path, err := l.volumePath(id)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readVolume reads n bytes from the start of the volume.
func (l *lab) readVolume(_ context.Context, id string, n int) ([]byte, error) {
	path, err := l.volumePath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	return b, err
}
