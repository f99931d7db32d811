package aws_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
	"github.com/drover-dev/drover/plugins/compute/computetest"
)

// publishImage publishes a small disk to the fake and returns the Image instances launch from.
func publishImage(t testing.TB, p *aws.Provider) compute.Image {
	t.Helper()
	src, _, _ := sparseSource(t, 6)
	ref, err := p.Publish(context.Background(), src, nil)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return compute.Image{Identity: src.Identity, Published: ref}
}

func TestContract(t *testing.T) {
	l := newLab(t, awslab.Options{PendingPolls: 2})
	img := publishImage(t, l.provider(t))
	computetest.Run(t, func(t *testing.T) compute.Provider { return l.provider(t) }, computetest.Options{Image: img, Ports: []int{80, 443}})
}

func TestPublisherContract(t *testing.T) {
	l := newLab(t, awslab.Options{SnapshotPendingPolls: 2})
	const size = 2 << 20
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		return computetest.PublisherFixture{
			Publisher: l.provider(t),
			Uploaded:  l.cloud.BytesReceived,
			Content: func(ctx context.Context, ref compute.PublishedImage) ([]byte, error) {
				return l.content(ctx, t, ref, size)
			},
		}
	}, computetest.PublisherOptions{Size: size})
}

// TestLaunchRequest checks what RunInstances asked for: the AMI, type, subnet, groups, the
// instance profile of the cloud role, user-data, IMDSv2 required and the labels as tags.
func TestLaunchRequest(t *testing.T) {
	l := newLab(t, awslab.Options{InstanceProfiles: map[string]awslab.InstanceProfile{
		"vault-node": {Role: "vault", AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", Token: "t"},
	}})
	p := l.provider(t, func(c *aws.Config) {
		c.InstanceProfiles = map[string]string{"arn:aws:iam::123456789012:role/vault": "vault-node"}
	})
	img := publishImage(t, p)
	spec := compute.Spec{Token: "rollout-7/vault/0", Name: "vault-0", Image: img, Labels: map[string]string{"role": "vault", "color": "green"},
		Ports: []int{8200}, UserData: []byte("wrapping-token"), CloudRole: "arn:aws:iam::123456789012:role/vault"}
	in, err := p.Launch(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	var got awslab.Instance
	for _, i := range l.cloud.Instances() {
		if i.ID == in.ID {
			got = i
		}
	}
	switch {
	case got.ImageID != img.Published.ID, got.InstanceType != "t3.micro", got.SubnetID != "subnet-0a1b2c3d":
		t.Errorf("launched %+v, want AMI %s, t3.micro in subnet-0a1b2c3d", got, img.Published.ID)
	case len(got.SecurityGroupIDs) != 1 || got.SecurityGroupIDs[0] != "sg-0123456789abcdef0":
		t.Errorf("security groups %v", got.SecurityGroupIDs)
	case got.InstanceProfile != "vault-node":
		t.Errorf("instance profile %q, want vault-node (the config's mapping of the role)", got.InstanceProfile)
	case string(got.UserData) != "wrapping-token":
		t.Errorf("user data %q", got.UserData)
	case got.HTTPTokens != "required":
		t.Errorf("HttpTokens %q, want required", got.HTTPTokens)
	case got.ClientToken != spec.Token:
		t.Errorf("client token %q, want %q", got.ClientToken, spec.Token)
	case got.Tags["drover:role"] != "vault" || got.Tags["drover:color"] != "green" || got.Tags["Name"] != "vault-0":
		t.Errorf("tags %v", got.Tags)
	}
	if in.Address != got.PublicIP {
		t.Errorf("Address %v, want the public IP %v", in.Address, got.PublicIP)
	}
	priv := l.provider(t, func(c *aws.Config) { c.Address = aws.AddressPrivate })
	ins, err := priv.Instances(t.Context(), compute.Selector{"role": "vault"})
	if err != nil || len(ins) != 1 || ins[0].Address != got.PrivateIP {
		t.Errorf("with address = private, Instances = %+v, %v; want the private IP %v", ins, err, got.PrivateIP)
	}
	noImage := spec
	noImage.Token, noImage.Image = "other", compute.Image{Identity: img.Identity}
	if _, err := p.Launch(t.Context(), noImage); err == nil || !strings.Contains(err.Error(), "no published AMI") {
		t.Errorf("Launch without a published AMI: %v, want an error saying so", err)
	}
}

// TestLaunchFaults injects what EC2 does to launches and checks each is survived or reported.
func TestLaunchFaults(t *testing.T) {
	l := newLab(t, awslab.Options{})
	p := l.provider(t)
	img := publishImage(t, p)
	n := 0
	spec := func() compute.Spec {
		n++
		return compute.Spec{Token: "faults-" + string(rune('a'+n)), Name: "web", Image: img, Labels: map[string]string{"role": "web", "n": string(rune('a' + n))}}
	}
	live := func() int {
		ins, err := p.Instances(t.Context(), compute.Selector{"role": "web"})
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, in := range ins {
			if in.State != compute.Terminated {
				c++
			}
		}
		return c
	}
	survive := func(name string, arm func()) {
		arm()
		before := live()
		if _, err := p.Launch(t.Context(), spec()); err != nil {
			t.Errorf("%s: Launch: %v", name, err)
		}
		if got := live(); got != before+1 {
			t.Errorf("%s: %d instances running after one Launch, want %d", name, got, before+1)
		}
	}
	survive("RequestLimitExceeded", func() { l.cloud.Fail(withTimes(awslab.EC2RequestLimitExceeded, "RunInstances", 4)) })
	survive("InternalError", func() { l.cloud.Fail(withTimes(awslab.EC2InternalError, "RunInstances", 2)) })
	survive("Unavailable on DescribeInstances", func() { l.cloud.Fail(withTimes(awslab.EC2Unavailable, "DescribeInstances", 3)) })
	survive("InvalidInstanceID.NotFound after launch", func() { l.cloud.HideNewInstances(4) })
	l.cloud.HideNewInstances(0)

	before := live()
	l.cloud.InsufficientCapacity(1000)
	_, err := p.Launch(t.Context(), spec())
	l.cloud.InsufficientCapacity(0)
	if err == nil || !strings.Contains(err.Error(), "t3.micro") || !strings.Contains(err.Error(), "InsufficientInstanceCapacity") || !strings.Contains(err.Error(), "nothing was started") {
		t.Errorf("Launch without capacity: %v, want an error naming the type and InsufficientInstanceCapacity", err)
	}
	if got := live(); got != before {
		t.Errorf("a refused launch left %d instances behind", got-before)
	}

	for _, code := range []string{"InstanceLimitExceeded", "Unsupported", "VcpuLimitExceeded"} {
		l.cloud.Fail(awslab.Fault{Service: "ec2", Action: "RunInstances", Status: 400, Code: code, Message: "refused", Times: 1})
		_, err := p.Launch(t.Context(), spec())
		if err == nil || !strings.Contains(err.Error(), "t3.micro") || !strings.Contains(err.Error(), "subnet-0a1b2c3d") || !strings.Contains(err.Error(), code) {
			t.Errorf("Launch refused with %s: %v, want an error naming the type, the subnet's zone and the code", code, err)
		}
		if got := live(); got != before {
			t.Errorf("a launch refused with %s left %d instances behind", code, got-before)
		}
	}

	l.cloud.FailLaunches(1)
	_, err = p.Launch(t.Context(), spec())
	if err == nil || !strings.Contains(err.Error(), "Server.InternalError") || !strings.Contains(err.Error(), "on its own") {
		t.Errorf("Launch of an instance that terminated by itself: %v, want an error with its state reason", err)
	}
	if got := live(); got != before {
		t.Errorf("after an instance died on launch, %d live instances more", got-before)
	}
}

func withTimes(f awslab.Fault, action string, n int) awslab.Fault {
	f.Action, f.Times = action, n
	return f
}

// TestCanceledLaunchIsAdopted: a Launch whose ctx ends while the instance is pending leaves it,
// and a retry with the same token adopts it instead of starting a second one.
func TestCanceledLaunchIsAdopted(t *testing.T) {
	l := newLab(t, awslab.Options{PendingPolls: 1000})
	p := l.provider(t)
	img := publishImage(t, p)
	spec := compute.Spec{Token: "adopt-1", Name: "web", Image: img, Labels: map[string]string{"role": "web"}}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := p.Launch(ctx, spec); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Launch of an instance that stays pending, with a deadline: %v", err)
	}
	again, err := p.Launch(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.cloud.Instances(); len(got) != 1 || got[0].ID != again.ID {
		t.Errorf("after a Launch was interrupted and retried, the fake holds %+v, want only %s", got, again.ID)
	}
}

func TestVolumesContract(t *testing.T) {
	l := newLab(t, awslab.Options{PendingPolls: 1, SnapshotPendingPolls: 2})
	img := publishImage(t, l.provider(t))
	computetest.RunVolumes(t, func(t *testing.T) computetest.VolumesFixture {
		p := l.provider(t)
		return computetest.VolumesFixture{Provider: p, Volumes: p, WriteMarker: l.writeVolume, ReadMarker: l.readVolume}
	}, computetest.VolumesOptions{Image: img})
}
