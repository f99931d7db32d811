package awslab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
)

// Hypervisor boots an instance's disk. With Options.Hypervisor nil, instances exist only as API
// state (they go pending -> running by themselves), which is what contract tests use.
//
// The fake calls Boot from a goroutine of its own once RunInstances (or StartInstances) has
// answered; the instance is pending until Boot returns and running after. An error from Boot
// terminates the instance with the state reason Server.InternalError. Stop and terminate call
// Machine.Stop; so does the end of the test, for every machine still up.
type Hypervisor interface {
	Boot(ctx context.Context, m MachineSpec) (Machine, error)
}

// MachineSpec is what a Hypervisor needs to boot one instance the way EC2 would.
type MachineSpec struct {
	InstanceID string
	Disk       string                            // raw disk file assembled from the AMI's root snapshot blocks; the machine owns it
	Arch       string                            // "amd64" or "arm64"
	BootMode   string                            // "uefi" or "legacy-bios" (from the AMI's BootMode / uefi-preferred)
	Address    netip.Addr                        // the loopback address the instance's public IP maps to
	Ports      []int                             // forwarded from Address:port to the guest's port (the fake's Options.Ports)
	Metadata   http.Handler                      // this instance's IMDS: the guest reaches it at 169.254.169.254:80
	Routes     map[netip.AddrPort]netip.AddrPort // guest-visible address -> host loopback address (a service "in the VPC", e.g. Vault)
	Dir        string                            // a directory of its own for console log, pid file, sockets
}

// Machine is one booted instance.
type Machine interface {
	Console() ([]byte, error) // the serial console so far (GetConsoleOutput)
	Stop() error              // power off and wait until the process is gone; nil if already gone
}

// assembleDisk writes the root volume of an instance: a sparse raw file of size bytes holding
// the snapshot's written blocks at their offsets (unwritten blocks are holes, which read as zeros
// as an EBS volume's do). src is an open descriptor of the snapshot's block file, which stays
// readable even if the snapshot is deleted meanwhile.
func assembleDisk(path string, src *os.File, blocks []int32, size int64) error {
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("awslab: root volume: %w", err)
	}
	if err := dst.Truncate(size); err != nil {
		dst.Close()
		return fmt.Errorf("awslab: root volume: %w", err)
	}
	buf := make([]byte, BlockSize)
	for _, i := range blocks {
		off := int64(i) * BlockSize
		if _, err := src.ReadAt(buf, off); err != nil && err != io.EOF {
			dst.Close()
			return fmt.Errorf("awslab: root volume: reading block %d of the snapshot: %w", i, err)
		}
		if _, err := dst.WriteAt(buf, off); err != nil {
			dst.Close()
			return fmt.Errorf("awslab: root volume: %w", err)
		}
	}
	return dst.Close()
}

func removeFile(name string) error { return os.Remove(name) }
