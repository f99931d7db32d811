package awslab

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func volumeOf(t *testing.T, e *ec2.Client, id string) ec2types.Volume {
	t.Helper()
	out, err := e.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(out.Volumes) != 1 {
		t.Fatalf("DescribeVolumes %s: %v %+v", id, err, out)
	}
	return out.Volumes[0]
}

func attachState(v ec2types.Volume) ec2types.VolumeAttachmentState {
	if len(v.Attachments) == 0 {
		return ""
	}
	return v.Attachments[0].State
}

// TestVolumeLifecycle goes through every volume action with the real ec2 client: create (and its
// client token), the states of attach and detach, their refusals, delete.
func TestVolumeLifecycle(t *testing.T) {
	c := New(t, Options{})
	e, _ := defaultClients(c)
	ctx := context.Background()
	ami := image1(t, c, "db-1", "x86_64")
	var ins []string
	for _, tok := range []string{"a", "b"} {
		run, err := e.RunInstances(ctx, runInput(ami, tok))
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, *run.Instances[0].InstanceId)
		describe(t, e, ins[len(ins)-1]) // pending -> running
	}
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(2), VolumeType: ec2types.VolumeTypeGp3,
		ClientToken: aws.String("vol-token-1"), TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume,
			Tags: []ec2types.Tag{{Key: aws.String("drover:role"), Value: aws.String("db")}}}}}
	cv, err := e.CreateVolume(ctx, in)
	if err != nil || cv.State != ec2types.VolumeStateCreating || aws.ToInt32(cv.Size) != 2 || len(cv.Tags) != 1 {
		t.Fatalf("CreateVolume: %v %+v", err, cv)
	}
	id := *cv.VolumeId
	again, err := e.CreateVolume(ctx, in)
	if err != nil || *again.VolumeId != id {
		t.Fatalf("CreateVolume with the same token: %v %v, want %s", err, again, id)
	}
	in2 := *in
	in2.Size = aws.Int32(3)
	_, err = e.CreateVolume(ctx, &in2)
	wantCode(t, "CreateVolume, same token, other size", err, "IdempotentParameterMismatch")
	_, err = e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: &id, InstanceId: &ins[0], Device: aws.String("/dev/sdf")})
	wantCode(t, "AttachVolume while creating", err, "IncorrectState")
	if v := volumeOf(t, e, id); v.State != ec2types.VolumeStateAvailable {
		t.Fatalf("after one DescribeVolumes: %s, want available", v.State)
	}
	st, err := os.Stat(c.Volumes()[0].Path)
	if err != nil || st.Size() != 2<<30 {
		t.Fatalf("the volume's data file: %v %v, want 2 GiB", err, st)
	}
	_, err = e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: &id, InstanceId: &ins[0], Device: aws.String("/dev/xvda")})
	wantCode(t, "AttachVolume on the root device", err, "InvalidParameterValue")
	_, err = e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String("vol-0000000000000000a"), InstanceId: &ins[0], Device: aws.String("/dev/sdf")})
	wantCode(t, "AttachVolume of an unknown volume", err, "InvalidVolume.NotFound")
	at, err := e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: &id, InstanceId: &ins[0], Device: aws.String("/dev/sdf")})
	if err != nil || at.State != ec2types.VolumeAttachmentStateAttaching {
		t.Fatalf("AttachVolume: %v %+v", err, at)
	}
	_, err = e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: &id, InstanceId: &ins[1], Device: aws.String("/dev/sdf")})
	wantCode(t, "AttachVolume of an attached volume", err, "VolumeInUse")
	_, err = e.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: &id})
	wantCode(t, "DeleteVolume while attached", err, "VolumeInUse")
	v := volumeOf(t, e, id)
	if v.State != ec2types.VolumeStateInUse || attachState(v) != ec2types.VolumeAttachmentStateAttached || *v.Attachments[0].InstanceId != ins[0] {
		t.Fatalf("after attach: %s %+v", v.State, v.Attachments)
	}
	if bdm := describe(t, e, ins[0]).BlockDeviceMappings; len(bdm) != 1 || *bdm[0].DeviceName != "/dev/sdf" || *bdm[0].Ebs.VolumeId != id {
		t.Fatalf("DescribeInstances' block device mappings: %+v, want %s on /dev/sdf", bdm, id)
	}
	got, err := e.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{ins[0]}},
		{Name: aws.String("tag:drover:role"), Values: []string{"db"}}}})
	if err != nil || len(got.Volumes) != 1 {
		t.Fatalf("DescribeVolumes by attachment and tag: %v %+v", err, got)
	}
	dt, err := e.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: &id})
	if err != nil || dt.State != ec2types.VolumeAttachmentStateDetaching {
		t.Fatalf("DetachVolume: %v %+v", err, dt)
	}
	_, err = e.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: &id})
	wantCode(t, "DetachVolume while detaching", err, "IncorrectState")
	if v := volumeOf(t, e, id); v.State != ec2types.VolumeStateAvailable || len(v.Attachments) != 0 {
		t.Fatalf("after detach: %s %+v", v.State, v.Attachments)
	}
	_, err = e.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: &id})
	wantCode(t, "DetachVolume of an available volume", err, "IncorrectState")

	// Terminating an instance detaches its volumes.
	if _, err := e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: &id, InstanceId: &ins[1], Device: aws.String("/dev/sdg")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{ins[1]}}); err != nil {
		t.Fatal(err)
	}
	if v := volumeOf(t, e, id); v.State != ec2types.VolumeStateAvailable {
		t.Fatalf("after terminating its instance: %s, want available", v.State)
	}

	// Another zone: created, not attachable to an instance of the first.
	other, err := e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1b"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	volumeOf(t, e, *other.VolumeId)
	_, err = e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: other.VolumeId, InstanceId: &ins[0], Device: aws.String("/dev/sdf")})
	wantCode(t, "AttachVolume across zones", err, "InvalidVolume.ZoneMismatch")
	_, err = e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("eu-west-1a"), Size: aws.Int32(1)})
	wantCode(t, "CreateVolume in another region's zone", err, "InvalidParameterValue")

	if _, err := e.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: &id}); err != nil {
		t.Fatal(err)
	}
	if v := volumeOf(t, e, id); v.State != ec2types.VolumeStateDeleting {
		t.Fatalf("after DeleteVolume: %s, want deleting", v.State)
	}
	_, err = e.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	wantCode(t, "DescribeVolumes after delete", err, "InvalidVolume.NotFound")
	_, err = e.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: &id})
	wantCode(t, "DeleteVolume again", err, "InvalidVolume.NotFound")
}

// TestVolumeSnapshotRestore writes to a volume's data file, snapshots it (pending for two polls),
// and restores it into a bigger volume holding the same bytes.
func TestVolumeSnapshotRestore(t *testing.T) {
	c := New(t, Options{SnapshotPendingPolls: 2})
	e, _ := defaultClients(c)
	ctx := context.Background()
	cv, err := e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	volumeOf(t, e, *cv.VolumeId)
	data := bytes.Repeat([]byte("rows!"), 1000)
	f, err := os.OpenFile(c.Volumes()[0].Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 700<<20+12345); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cs, err := e.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: cv.VolumeId, Description: aws.String("before"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot,
			Tags: []ec2types.Tag{{Key: aws.String("drover-token"), Value: aws.String("s1")}}}}})
	if err != nil || cs.State != ec2types.SnapshotStatePending || *cs.VolumeId != *cv.VolumeId {
		t.Fatalf("CreateSnapshot: %v %+v", err, cs)
	}
	_, err = e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: cs.SnapshotId})
	wantCode(t, "CreateVolume from a pending snapshot", err, "IncorrectState")
	states := []ec2types.SnapshotState{}
	for range 2 {
		out, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{*cv.VolumeId}}}})
		if err != nil || len(out.Snapshots) != 1 {
			t.Fatalf("DescribeSnapshots by volume: %v %+v", err, out)
		}
		states = append(states, out.Snapshots[0].State)
	}
	if states[0] != ec2types.SnapshotStatePending || states[1] != ec2types.SnapshotStateCompleted {
		t.Fatalf("snapshot states over two polls: %v, want pending, completed", states)
	}
	_, err = e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: aws.String("snap-00000000000000000")})
	wantCode(t, "CreateVolume from an unknown snapshot", err, "InvalidSnapshot.NotFound")
	rv, err := e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: cs.SnapshotId, Size: aws.Int32(2)})
	if err != nil || aws.ToString(rv.SnapshotId) != *cs.SnapshotId {
		t.Fatalf("CreateVolume from the snapshot: %v %+v", err, rv)
	}
	var path string
	for _, v := range c.Volumes() {
		if v.ID == *rv.VolumeId {
			path = v.Path
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != 2<<30 {
		t.Fatalf("the restored volume's file: %v %v, want 2 GiB", err, st)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	got := make([]byte, len(data))
	if _, err := rf.ReadAt(got, 700<<20+12345); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the restored volume does not hold the snapshot's bytes at their offset: %v", err)
	}
	if _, err := e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: cs.SnapshotId}); err != nil {
		t.Fatal(err)
	}
}
