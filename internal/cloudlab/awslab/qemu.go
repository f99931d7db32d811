package awslab

import (
	"context"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/vm"
)

// QEMU is the Hypervisor that boots instances for real: each one a qemu process on this machine
// (package vm), its root volume on NVMe, UEFI or BIOS as the AMI says, and its metadata service
// at 169.254.169.254. Its machines are VolumeAttachers: an EBS volume is hot-plugged as an NVMe
// controller whose serial is the volume ID without its dash. The zero value gives each guest vm's
// defaults (1 GiB, 1 CPU, KVM when it works); Memory, CPUs and Accel override them.
type QEMU struct {
	Memory int    // MiB
	CPUs   int    // vCPUs
	Accel  string // "kvm", "tcg", or "" to probe
}

// hotplugLimit bounds one hot-plug: a guest that never releases a device leaves the volume
// attached (the attachment goes back to attached, as a failed EBS detach does).
const hotplugLimit = 3 * time.Minute

// Boot implements Hypervisor.
func (q QEMU) Boot(ctx context.Context, m MachineSpec) (Machine, error) {
	vmm, err := vm.Start(ctx, vm.Spec{
		Disk: m.Disk, Arch: m.Arch, BootMode: m.BootMode, Address: m.Address, Ports: m.Ports,
		Metadata: m.Metadata, Routes: m.Routes, Dir: m.Dir,
		Memory: q.Memory, CPUs: q.CPUs, Accel: q.Accel,
	})
	if err != nil {
		return nil, err
	}
	return qemuMachine{vmm}, nil
}

// qemuMachine is a vm.Machine as a VolumeAttacher.
type qemuMachine struct{ *vm.Machine }

// AttachDisk implements VolumeAttacher.
func (m qemuMachine) AttachDisk(path, serial string) error {
	ctx, cancel := context.WithTimeout(context.Background(), hotplugLimit)
	defer cancel()
	return m.AttachVolume(ctx, serial, path)
}

// DetachDisk implements VolumeAttacher: it returns once the guest has released the device.
func (m qemuMachine) DetachDisk(serial string) error {
	ctx, cancel := context.WithTimeout(context.Background(), hotplugLimit)
	defer cancel()
	return m.DetachVolume(ctx, serial)
}
