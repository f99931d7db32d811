package awslab

import (
	"context"

	"github.com/drover-dev/drover/internal/cloudlab/vm"
)

// QEMU is the Hypervisor that boots instances for real: each one a qemu process on this machine
// (package vm), its root volume on NVMe, UEFI or BIOS as the AMI says, and its metadata service
// at 169.254.169.254. The zero value gives each guest vm's defaults (1 GiB, 1 CPU, KVM when it
// works); Memory, CPUs and Accel override them.
type QEMU struct {
	Memory int    // MiB
	CPUs   int    // vCPUs
	Accel  string // "kvm", "tcg", or "" to probe
}

// Boot implements Hypervisor.
func (q QEMU) Boot(ctx context.Context, m MachineSpec) (Machine, error) {
	return vm.Start(ctx, vm.Spec{
		Disk: m.Disk, Arch: m.Arch, BootMode: m.BootMode, Address: m.Address, Ports: m.Ports,
		Metadata: m.Metadata, Routes: m.Routes, Dir: m.Dir,
		Memory: q.Memory, CPUs: q.CPUs, Accel: q.Accel,
	})
}
