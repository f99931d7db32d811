package awslab

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// failingHypervisor refuses to boot.
type failingHypervisor struct{}

func (failingHypervisor) Boot(context.Context, MachineSpec) (Machine, error) {
	return nil, errors.New("qemu: no bootable device")
}

func TestBootFailureTerminates(t *testing.T) {
	c := New(t, Options{Hypervisor: failingHypervisor{}})
	e, _ := defaultClients(c)
	out, err := e.RunInstances(context.Background(), runInput(image1(t, c, "broken", "x86_64"), "x"))
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		in := describe(t, e, id)
		if in.State.Name == ec2types.InstanceStateNameTerminated {
			if *in.StateReason.Code != "Server.InternalError" || !strings.Contains(*in.StateReason.Message, "no bootable device") {
				t.Fatalf("state reason %+v", in.StateReason)
			}
			return
		}
		if in.State.Name != ec2types.InstanceStateNamePending || time.Now().After(deadline) {
			t.Fatalf("a failed boot left %s", in.State.Name)
		}
	}
}

// Stop powers the machine off; start boots the same disk again, not a fresh copy of the snapshot.
func TestStopStartReboots(t *testing.T) {
	h := &fakeHypervisor{t: t}
	c := New(t, Options{Hypervisor: h, Ports: []int{8081}})
	e, _ := defaultClients(c)
	ctx := context.Background()
	out, err := e.RunInstances(ctx, runInput(image1(t, c, "reboot", "x86_64"), "x"))
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	waitRunning(t, e, id)
	h.mu.Lock()
	disk := h.specs[0].Disk
	h.mu.Unlock()
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteAt([]byte("written by the guest"), BlockSize)
	f.Close()
	if _, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); describe(t, e, id).State.Name != ec2types.InstanceStateNameStopped; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never stopped")
		}
	}
	h.mu.Lock()
	up := h.up
	h.mu.Unlock()
	if up != 0 {
		t.Fatalf("%d machines up after StopInstances", up)
	}
	if _, err := e.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, e, id)
	h.mu.Lock()
	boots, again := len(h.specs), h.specs[len(h.specs)-1].Disk
	h.mu.Unlock()
	got := make([]byte, 20)
	f, _ = os.Open(again)
	defer f.Close()
	_, _ = f.ReadAt(got, BlockSize)
	if boots != 2 || again != disk || string(got) != "written by the guest" {
		t.Fatalf("%d boots, disk %s then %s holding %q; want the same disk booted twice", boots, disk, again, got)
	}
}

// Tags on every kind of resource; an instance holds one Elastic IP; a held address is not
// released.
func TestTagsAndAddresses(t *testing.T) {
	c := New(t, Options{})
	e, _ := defaultClients(c)
	ctx := context.Background()
	ami := image1(t, c, "tagged", "x86_64")
	out, err := e.RunInstances(ctx, runInput(ami, "x"))
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	waitRunning(t, e, id)
	a1, err := e.AllocateAddress(ctx, &ec2.AllocateAddressInput{TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeElasticIp,
		Tags: []ec2types.Tag{{Key: aws.String("drover:ip"), Value: aws.String("web")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := e.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id, ami, *a2.AllocationId},
		Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id, "i-0123456789abcdef0"}, Tags: []ec2types.Tag{{Key: aws.String("x"), Value: aws.String("y")}}})
	wantCode(t, "CreateTags with an unknown instance", err, "InvalidInstanceID.NotFound")
	if _, ok := c.Instances()[0].Tags["x"]; ok {
		t.Fatal("a refused CreateTags tagged the instance it found")
	}
	da, err := e.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:drover:ip"), Values: []string{"web"}}}})
	if err != nil || len(da.Addresses) != 1 || *da.Addresses[0].AllocationId != *a1.AllocationId {
		t.Fatalf("DescribeAddresses by tag: %+v, %v", da, err)
	}
	if _, err := e.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	if c.Instances()[0].Tags["team"] != "ops" {
		t.Fatal("DeleteTags with another value removed the tag")
	}
	if _, err := e.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("team")}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Instances()[0].Tags["team"]; ok {
		t.Fatal("DeleteTags by key left the tag")
	}

	for _, a := range []*ec2.AllocateAddressOutput{a1, a2} {
		if _, err := e.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
	held := 0
	for _, a := range c.Addresses() {
		if a.InstanceID == id {
			held++
		}
	}
	if held != 1 || c.Addresses()[0].InstanceID+c.Addresses()[1].InstanceID != id {
		t.Fatalf("addresses %+v: want the instance to hold only the second", c.Addresses())
	}
	_, err = e.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a2.AllocationId})
	wantCode(t, "ReleaseAddress of a held address", err, "InvalidIPAddress.InUse")
	if _, err := e.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a1.AllocationId}); err != nil {
		t.Fatal(err)
	}
	_, err = e.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{*a1.AllocationId}})
	wantCode(t, "DescribeAddresses of a released address", err, "InvalidAllocationID.NotFound")
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if a := c.Addresses(); len(a) != 1 || a[0].InstanceID != "" {
		t.Fatalf("after TerminateInstances: %+v, want the address disassociated", a)
	}
}

// A program configured only by the environment (config.LoadDefaultConfig) reaches the fake.
func TestEnv(t *testing.T) {
	c := New(t, Options{})
	for _, kv := range c.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2.NewFromConfig(cfg).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}}); err != nil {
		t.Fatal(err)
	}
	if r := c.Requests(); len(r) != 1 || !r[0].Verified || r[0].Action != "DescribeImages" {
		t.Fatalf("requests %+v", r)
	}
}
