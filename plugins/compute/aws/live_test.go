package aws_test

import (
	"os"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/config"
)

// liveProvider opens the provider against real AWS, or skips: it needs DROVER_TEST_AWS_REGION
// and credentials in the SDK's chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or
// AWS_PROFILE). Everything the tests make is deleted by them.
func liveProvider(t *testing.T) *aws.Provider {
	t.Helper()
	region := os.Getenv("DROVER_TEST_AWS_REGION")
	haveCreds := os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_PROFILE") != ""
	if region == "" || !haveCreds {
		t.Skip("set DROVER_TEST_AWS_REGION and AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) to run against real AWS")
	}
	cfg := aws.NewDefaultConfig(config.OS())
	cfg.Region = region
	cfg.SubnetID = os.Getenv("DROVER_TEST_AWS_SUBNET")
	cfg.Zone = os.Getenv("DROVER_TEST_AWS_ZONE")
	if it := os.Getenv("DROVER_TEST_AWS_INSTANCE_TYPE"); it != "" {
		cfg.InstanceType = it
	}
	p, err := aws.New(t.Context(), cfg, aws.WithPollInterval(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLivePublisher publishes small disks as AMIs through the EBS direct APIs and deletes them.
// It needs ebs:StartSnapshot, PutSnapshotBlock, CompleteSnapshot and ec2:DescribeSnapshots,
// DeleteSnapshot, RegisterImage, DescribeImages, DeregisterImage, CreateTags.
func TestLivePublisher(t *testing.T) {
	p := liveProvider(t)
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		return computetest.PublisherFixture{Publisher: p}
	}, computetest.PublisherOptions{Timeout: 15 * time.Minute, Concurrency: 2})
}

// TestLiveCompute launches instances of DROVER_TEST_AWS_AMI (any AMI of the region: the suite
// does not need it to boot anything of drover's) and terminates them.
func TestLiveCompute(t *testing.T) {
	p := liveProvider(t)
	ami := os.Getenv("DROVER_TEST_AWS_AMI")
	if ami == "" {
		t.Skip("set DROVER_TEST_AWS_AMI to an AMI of DROVER_TEST_AWS_REGION to launch real instances")
	}
	computetest.Run(t, func(t *testing.T) compute.Provider { return p }, computetest.Options{
		Image:       compute.Image{Identity: "live-test", Published: compute.PublishedImage{ID: ami, Region: p.Region()}},
		Timeout:     10 * time.Minute,
		Concurrency: 2,
	})
}

// TestLiveVolumes runs the volumes suite on real EBS: instances of DROVER_TEST_AWS_AMI, volumes
// in the zone of DROVER_TEST_AWS_SUBNET (or DROVER_TEST_AWS_ZONE). The markers (data checks of a
// restore) are skipped: they would need a guest. It needs, beyond TestLiveCompute's,
// ec2:CreateVolume, DescribeVolumes, AttachVolume, DetachVolume, DeleteVolume, CreateSnapshot,
// DescribeSnapshots, DeleteSnapshot, DescribeSubnets and CreateTags on volumes and snapshots.
func TestLiveVolumes(t *testing.T) {
	p := liveProvider(t)
	ami := os.Getenv("DROVER_TEST_AWS_AMI")
	if ami == "" {
		t.Skip("set DROVER_TEST_AWS_AMI to an AMI of DROVER_TEST_AWS_REGION to attach volumes to real instances")
	}
	computetest.RunVolumes(t, func(t *testing.T) computetest.VolumesFixture {
		return computetest.VolumesFixture{Provider: p, Volumes: p}
	}, computetest.VolumesOptions{
		Image:   compute.Image{Identity: "live-test", Published: compute.PublishedImage{ID: ami, Region: p.Region()}},
		Timeout: 15 * time.Minute,
	})
}
