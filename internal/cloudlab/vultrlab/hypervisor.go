package vultrlab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/drover-dev/drover/internal/cloudlab/vm"
)

// Hypervisor boots an instance's disk. With Options.Hypervisor nil, instances exist only as API
// state (pending for Options.PendingPolls reads, then active), which is what contract tests use.
//
// With one, the fake copies the instance's snapshot into a disk of its own at create and calls
// Boot from a goroutine once the create has answered (and again at each start after a halt);
// the instance is pending until Boot returns and active after. An error from Boot leaves the
// instance active but powered off (power_status "stopped"), as a Vultr instance whose OS did not
// come up is, and the reason in BootErrors. Halt and delete call Machine.Stop; so does the end of
// the test, for every machine still up.
type Hypervisor interface {
	Boot(ctx context.Context, m MachineSpec) (Machine, error)
}

// MachineSpec is what a Hypervisor needs to boot one instance the way Vultr would.
type MachineSpec struct {
	InstanceID string
	Disk       string                            // raw disk file copied from the snapshot; the machine owns it
	BootMode   string                            // "uefi" or "legacy-bios", from the snapshot's uefi flag
	Address    netip.Addr                        // the loopback address the instance's main IP maps to
	Ports      []int                             // forwarded from Address:port to the guest's port (Options.Ports)
	Metadata   http.Handler                      // this instance's metadata service, at 169.254.169.254:80
	Routes     map[netip.AddrPort]netip.AddrPort // guest-visible address -> host loopback address (a service in the VPC)
	Dir        string                            // a directory of its own for console log, pid file, sockets
}

// Machine is one booted instance.
type Machine interface {
	Console() ([]byte, error)
	Stop() error // power off and wait until the process is gone; nil if already gone
}

// QEMU is the Hypervisor that boots instances for real: each one a qemu process on this machine
// (package vm) with Vultr's hardware (vm.Vultr: SMBIOS vendor "Vultr", virtio disk, DHCP) and
// its metadata service. The zero value gives vm's defaults; Memory, CPUs and Accel override them.
type QEMU struct {
	Memory int    // MiB
	CPUs   int    // vCPUs
	Accel  string // "kvm", "tcg", or "" to probe
}

// Boot implements Hypervisor.
func (q QEMU) Boot(ctx context.Context, m MachineSpec) (Machine, error) {
	return vm.Start(ctx, vm.Spec{
		Disk: m.Disk, Arch: "amd64", BootMode: m.BootMode, Address: m.Address, Ports: m.Ports,
		Platform: &vm.Vultr, Metadata: m.Metadata, Routes: m.Routes, Dir: m.Dir,
		Memory: q.Memory, CPUs: q.CPUs, Accel: q.Accel,
	})
}

// copySparse copies src to dst, leaving runs of zeros as holes, and returns the bytes read: a
// raw disk is mostly empty, and a sparse copy costs what its data does.
func copySparse(dst *os.File, src io.Reader) (int64, error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	var off int64
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, serr := dst.Seek(int64(n), io.SeekCurrent); serr != nil {
					return off, serr
				}
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				return off, werr
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, dst.Truncate(off)
		}
		if err != nil {
			return off, err
		}
	}
}

// instanceDisk copies the snapshot file in into the instance's directory and returns the disk.
func (c *Cloud) instanceDisk(id string, in *os.File) (dir, disk string, err error) {
	dir = filepath.Join(c.opts.Dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	disk = filepath.Join(dir, "disk.raw")
	out, err := os.Create(disk)
	if err != nil {
		return "", "", err
	}
	if _, err := copySparse(out, in); err != nil {
		out.Close()
		return "", "", fmt.Errorf("vultrlab: the disk of %s: %w", id, err)
	}
	return dir, disk, out.Close()
}
