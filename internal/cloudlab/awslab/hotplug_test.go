package awslab

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// plugHypervisor boots machines that implement VolumeAttacher: each hot-plug waits for a value
// on gate (nil: plug at once, an error: fail) and is recorded.
type plugHypervisor struct {
	gate  chan error
	mu    sync.Mutex
	calls []string // "attach PATH SERIAL" or "detach SERIAL"
}

type plugMachine struct{ h *plugHypervisor }

func (h *plugHypervisor) Boot(ctx context.Context, s MachineSpec) (Machine, error) {
	return plugMachine{h}, nil
}

func (m plugMachine) Console() ([]byte, error) { return nil, nil }
func (m plugMachine) Stop() error              { return nil }

func (m plugMachine) AttachDisk(path, serial string) error {
	err := <-m.h.gate
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	m.h.calls = append(m.h.calls, "attach "+path+" "+serial)
	return err
}

func (m plugMachine) DetachDisk(serial string) error {
	err := <-m.h.gate
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	m.h.calls = append(m.h.calls, "detach "+serial)
	return err
}

// waitAttachment polls DescribeVolumes until the volume's attachment state is want ("" for none).
func waitAttachment(t *testing.T, e *ec2.Client, id string, want ec2types.VolumeAttachmentState) ec2types.Volume {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if v := volumeOf(t, e, id); attachState(v) == want {
			return v
		}
	}
	t.Fatalf("volume %s never reached attachment state %q", id, want)
	return ec2types.Volume{}
}

// TestVolumeHotplug: with a machine that can hot-plug, the attachment stays attaching (and
// detaching) until the machine has the disk (or has let it go), with the volume's file and EBS's
// NVMe serial; a failed plug leaves the volume available.
func TestVolumeHotplug(t *testing.T) {
	h := &plugHypervisor{gate: make(chan error)}
	c := New(t, Options{Hypervisor: h})
	e, b := defaultClients(c)
	ctx := context.Background()
	_, ami := publish(t, e, b, "db-plug", "x86_64", 1, map[int32][]byte{0: block(0xAA)})
	run, err := e.RunInstances(ctx, runInput(ami, "plug"))
	if err != nil {
		t.Fatal(err)
	}
	in := *run.Instances[0].InstanceId
	waitRunning(t, e, in)
	cv, err := e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	id := *cv.VolumeId
	volumeOf(t, e, id)
	attach := func() {
		t.Helper()
		if _, err := e.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: &id, InstanceId: &in, Device: aws.String("/dev/sdf")}); err != nil {
			t.Fatal(err)
		}
	}

	attach()
	if got := attachState(volumeOf(t, e, id)); got != ec2types.VolumeAttachmentStateAttaching {
		t.Fatalf("before the machine has the disk: %q, want attaching", got)
	}
	h.gate <- errors.New("no free PCIe slot")
	waitAttachment(t, e, id, "")
	if v := volumeOf(t, e, id); v.State != ec2types.VolumeStateAvailable {
		t.Fatalf("after a failed hot-plug: %s, want available", v.State)
	}

	attach()
	h.gate <- nil
	waitAttachment(t, e, id, ec2types.VolumeAttachmentStateAttached)
	if _, err := e.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: &id}); err != nil {
		t.Fatal(err)
	}
	if got := attachState(volumeOf(t, e, id)); got != ec2types.VolumeAttachmentStateDetaching {
		t.Fatalf("before the machine let the disk go: %q, want detaching", got)
	}
	h.gate <- nil
	waitAttachment(t, e, id, "")

	path := c.Volumes()[0].Path
	serial := "vol" + id[4:]
	h.mu.Lock()
	defer h.mu.Unlock()
	want := []string{"attach " + path + " " + serial, "attach " + path + " " + serial, "detach " + serial}
	if len(h.calls) != len(want) || h.calls[0] != want[0] || h.calls[1] != want[1] || h.calls[2] != want[2] {
		t.Fatalf("hot-plug calls %q, want %q", h.calls, want)
	}
	if Serial(id) != serial {
		t.Errorf("Serial(%s) = %s, want %s", id, Serial(id), serial)
	}
}
