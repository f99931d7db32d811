package aws_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
)

// TestPublishSendsOnlyBlocksInUse: the fake receives no more bytes than the disk has in use
// (no zero block is sent), and the AMI is registered as EC2 boots drover's images.
func TestPublishSendsOnlyBlocksInUse(t *testing.T) {
	l := newLab(t, awslab.Options{})
	p := l.provider(t)
	src, data, inUse := sparseSource(t, 30)
	ref, err := p.Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.cloud.BytesReceived(); got > inUse {
		t.Errorf("the fake received %d bytes of a disk with %d bytes in use", got, inUse)
	}
	imgs := l.cloud.Images()
	if len(imgs) != 1 {
		t.Fatalf("the fake holds %d images, want 1", len(imgs))
	}
	im := imgs[0]
	switch {
	case im.ID != ref.ID, im.Tags["drover-identity"] != src.Identity:
		t.Errorf("image %+v, want %s tagged with %s", im, ref.ID, src.Identity)
	case im.Architecture != "x86_64", im.RootDeviceName != "/dev/xvda", im.VolumeType != "gp3":
		t.Errorf("image %+v, want x86_64 with its root on /dev/xvda, gp3", im)
	case im.BootMode != "uefi-preferred", im.ImdsSupport != "v2.0", !im.EnaSupport:
		t.Errorf("image %+v, want uefi-preferred, IMDSv2 only, ENA", im)
	case im.VolumeSize != 1:
		t.Errorf("image root volume %d GiB, want 1 (the disk rounded up)", im.VolumeSize)
	}
	got, err := l.content(t.Context(), t, ref, src.Size)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the AMI's snapshot does not hold the disk (%v)", err)
	}
}

// TestPublishThrottled: 10% of PutSnapshotBlock calls are throttled; the publish retries them.
func TestPublishThrottled(t *testing.T) {
	l := newLab(t, awslab.Options{})
	l.cloud.ThrottleBlocks(0.1, 13)
	p := l.provider(t)
	src, data, _ := sparseSource(t, 60)
	ref, err := p.Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatalf("Publish with 10%% of blocks throttled: %v", err)
	}
	throttled := 0
	for _, r := range l.cloud.Requests() {
		if r.Action == "PutSnapshotBlock" && r.Code == "ThrottlingException" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Error("no PutSnapshotBlock was throttled: the fault was not injected")
	}
	got, err := l.content(t.Context(), t, ref, src.Size)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the AMI's snapshot does not hold the disk (%v)", err)
	}
	t.Logf("%d PutSnapshotBlock calls throttled and retried", throttled)
}

// TestPublishKilledMidway cancels a publish after some blocks, publishes again, and checks that
// one AMI and one snapshot remain, holding the disk.
func TestPublishKilledMidway(t *testing.T) {
	l := newLab(t, awslab.Options{})
	p := l.provider(t)
	src, data, inUse := sparseSource(t, 60)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := p.Publish(ctx, src, func(e compute.PublishProgress) {
		if e.Phase == compute.PhaseUpload && e.Done >= 4*awslab.BlockSize {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed Publish: %v, want context.Canceled", err)
	}
	if _, ok, err := p.Published(t.Context(), src.Identity); ok || err != nil {
		t.Fatalf("after a killed publish, Published = %v, %v", ok, err)
	}
	sentBefore := l.cloud.BytesReceived()
	if sentBefore >= inUse {
		t.Fatalf("the killed publish sent all %d bytes before it was killed", sentBefore)
	}
	// A new process: a new provider over the same cloud.
	ref, err := l.provider(t).Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if imgs := l.cloud.Images(); len(imgs) != 1 || imgs[0].ID != ref.ID {
		t.Errorf("images after the republish: %+v, want only %s", imgs, ref.ID)
	}
	if snaps := l.cloud.Snapshots(); len(snaps) != 1 || snaps[0].State != "completed" {
		t.Errorf("snapshots after the republish: %+v, want one completed", snaps)
	}
	got, err := l.content(t.Context(), t, ref, src.Size)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the AMI's snapshot does not hold the disk (%v)", err)
	}
	if err := p.Unpublish(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	if imgs, snaps := l.cloud.Images(), l.cloud.Snapshots(); len(imgs) != 0 || len(snaps) != 0 {
		t.Errorf("after Unpublish the fake holds images %+v and snapshots %+v", imgs, snaps)
	}
}

// TestPublishFaults: throttling and 5xx on every other call of the publish are survived.
func TestPublishFaults(t *testing.T) {
	l := newLab(t, awslab.Options{SnapshotPendingPolls: 3})
	for _, f := range []awslab.Fault{
		withTimes(awslab.EBSThrottling, "StartSnapshot", 2),
		withTimes(awslab.EBSInternal, "CompleteSnapshot", 2),
		withTimes(awslab.EC2RequestLimitExceeded, "RegisterImage", 2),
		withTimes(awslab.EC2InternalError, "DescribeSnapshots", 2),
		withTimes(awslab.EC2Unavailable, "DescribeImages", 2),
	} {
		l.cloud.Fail(f)
	}
	p := l.provider(t)
	src, _, _ := sparseSource(t, 9)
	if _, err := p.Publish(t.Context(), src, nil); err != nil {
		t.Fatalf("Publish with faults: %v", err)
	}
	if imgs, snaps := l.cloud.Images(), l.cloud.Snapshots(); len(imgs) != 1 || len(snaps) != 1 {
		t.Errorf("after a publish with faults the fake holds %d images and %d snapshots, want 1 and 1", len(imgs), len(snaps))
	}
}

// BenchmarkPublish publishes a disk to the fake over loopback and reports the bytes the fake
// received over the disk's bytes in use (goal <= 1: no zero block sent) and over its length, and
// the time each way of getting the disk to AWS would take at a stated uplink of 100 Mbit/s: the
// EBS direct APIs (what the fake received), and S3 + ImportSnapshot uploading the raw file
// (Format RAW) or a stream-optimized VMDK (Format VMDK, deflated grains; an estimate), not counting
// the import task's own time. The disk is DROVER_BENCH_DISK (a raw image from the catalog, such as
// the web role's) or a sparse one of 256 MiB, a third in use.
func BenchmarkPublish(b *testing.B) {
	src, inUse := benchSource(b)
	var sent int64
	start := time.Now()
	for range b.N {
		l := newLab(b, awslab.Options{})
		if _, err := l.provider(b).Publish(context.Background(), src, nil); err != nil {
			b.Fatal(err)
		}
		sent = l.cloud.BytesReceived()
	}
	wall := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	const uplink = 100e6 / 8 // bytes a second at 100 Mbit/s
	vmdk := aws.VMDKStreamBytes(b, src.Path, src.Size)
	b.ReportMetric(float64(sent)/float64(inUse), "sent/in-use")
	b.ReportMetric(float64(sent)/float64(src.Size), "sent/length")
	b.ReportMetric(float64(sent)/(1<<20), "MiB-sent")
	b.ReportMetric(float64(sent)/uplink, "s-ebs-at-100Mbit")
	b.ReportMetric(float64(src.Size)/uplink, "s-import-raw-at-100Mbit")
	b.ReportMetric(float64(vmdk)/uplink, "s-import-vmdk-at-100Mbit")
	b.Logf("%s: length %d, in use %d; the fake received %d in %v over loopback; S3+ImportSnapshot would upload %d (RAW) or about %d (VMDK)",
		src.Path, src.Size, inUse, sent, wall, src.Size, vmdk)
}

func benchSource(b *testing.B) (compute.PublishSource, int64) {
	path := os.Getenv("DROVER_BENCH_DISK")
	if path == "" {
		src, _, inUse := sparseSource(b, 512)
		return src, inUse
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return compute.PublishSource{Identity: "sha256:" + hex.EncodeToString(id), Role: "web", Arch: "amd64", Path: path, Size: st.Size()},
		st.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestPublishKilledAfterUpload kills a publish while EBS completes the snapshot, and one just
// before RegisterImage: the next publish sends no block again and leaves one AMI and one snapshot.
func TestPublishKilledAfterUpload(t *testing.T) {
	for _, phase := range []string{compute.PhaseImport, compute.PhaseRegister} {
		t.Run(phase, func(t *testing.T) {
			l := newLab(t, awslab.Options{SnapshotPendingPolls: 4})
			src, data, _ := sparseSource(t, 12)
			ctx, cancel := context.WithCancel(t.Context())
			_, err := l.provider(t).Publish(ctx, src, func(e compute.PublishProgress) {
				if e.Phase == phase {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Publish killed in phase %s: %v, want context.Canceled", phase, err)
			}
			sent := l.cloud.BytesReceived()
			ref, err := l.provider(t).Publish(t.Context(), src, nil)
			if err != nil {
				t.Fatalf("Publish after one killed in phase %s: %v", phase, err)
			}
			if again := l.cloud.BytesReceived() - sent; again != 0 {
				t.Errorf("the republish sent %d bytes again", again)
			}
			if imgs, snaps := l.cloud.Images(), l.cloud.Snapshots(); len(imgs) != 1 || len(snaps) != 1 {
				t.Errorf("after the republish the fake holds images %+v and snapshots %+v, want one of each", imgs, snaps)
			}
			if got, err := l.content(t.Context(), t, ref, src.Size); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the AMI's snapshot does not hold the disk (%v)", err)
			}
		})
	}
}
