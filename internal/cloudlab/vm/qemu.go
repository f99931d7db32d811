package vm

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/hostcheck"
	"github.com/drover-dev/drover/internal/qemuproc"
	"github.com/drover-dev/drover/internal/qmp"
)

// Firmware files from Debian's ovmf and qemu-efi-aarch64 packages.
const (
	ovmfPath    = "/usr/share/ovmf/OVMF.fd"
	aavmfPath   = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	launchLimit = time.Minute     // qemu's own start, not the guest's boot
	killLimit   = 5 * time.Second // how long a VM gets to exit after SIGTERM, then after SIGKILL
)

// nicSlot is the NIC's PCI slot: not the slot the local lab's NIC gets, so the guest's interface is
// named otherwise (the image must DHCP on whatever its NIC is called, as on EC2's ens5).
const nicSlot = "0x5"

// chooseAccel returns s.Accel, or for amd64 on an amd64 host KVM when a probe guest runs under it
// (a /dev/kvm that exists has hung and aborted guests on nested hosts), else TCG.
func chooseAccel(ctx context.Context, s Spec) (string, error) {
	if s.Accel != "" {
		return s.Accel, nil
	}
	if s.Arch != "amd64" || runtime.GOARCH != "amd64" {
		return "tcg", nil
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg", nil
	}
	if err := hostcheck.ProbeAccel(ctx, "kvm", 0); err == nil {
		return "kvm", nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("vm: choosing an accelerator: %w", context.Cause(ctx))
	}
	return "tcg", nil
}

// args is qemu's command line for s: the binary and its arguments. fwds are the guestfwd
// connections, each run through the pipe program to a host loopback address.
func args(s Spec, accel, pipe string, fwds map[netip.AddrPort]netip.AddrPort) ([]string, error) {
	// Commas separate qemu's suboptions; a comma in a value is doubled.
	esc := func(v string) string { return strings.ReplaceAll(v, ",", ",,") }
	disk, err := filepath.Abs(s.Disk)
	if err != nil {
		return nil, fmt.Errorf("vm: disk %q: %w", s.Disk, err)
	}
	p := s.platform()
	// qemu's DNS server is .253 of the DHCP range's /24 (169.254.169.253 on EC2, its resolver's
	// link-local address there).
	d := p.DHCPStart.As4()
	dns := [4]byte{d[0], d[1], d[2], 253}
	netdev := fmt.Sprintf("user,id=net0,restrict=on,net=%v,host=%v,dhcpstart=%v,dns=%v", p.Net, p.Gateway, p.DHCPStart, netip.AddrFrom4(dns))
	for _, port := range s.Ports {
		netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-%s:%d", s.Address, port, s.GuestAddress, port)
	}
	guests := make([]netip.AddrPort, 0, len(fwds))
	for g := range fwds {
		guests = append(guests, g)
	}
	slices.SortFunc(guests, func(a, b netip.AddrPort) int { return a.Compare(b) })
	for _, g := range guests {
		netdev += ",guestfwd=tcp:" + g.String() + "-cmd:" + esc(pipe+" "+fwds[g].String())
	}
	bin := "qemu-system-x86_64"
	a := []string{"-machine", "q35"}
	firmware := ovmfPath
	if s.Arch == "arm64" {
		bin = "qemu-system-aarch64"
		a = []string{"-machine", "virt", "-cpu", "max"}
		firmware = aavmfPath
	}
	a = append(a,
		// Named by its directory (the fake's instance ID, typically), for people reading ps.
		"-name", "guest="+esc("drover-cloudlab-"+filepath.Base(s.Dir)),
		"-accel", accel,
		"-m", strconv.Itoa(s.Memory),
		"-smp", strconv.Itoa(s.CPUs),
		"-display", "none", "-nodefaults", "-no-user-config",
		"-drive", "file="+esc(disk)+",format=raw,if=none,id=root",
		"-device", rootDevice(p),
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=net0,addr="+nicSlot,
		// The firmware's system vendor is what Linux and drover-boot read to know which cloud they
		// run on.
		"-smbios", "type=1,manufacturer="+esc(p.Vendor)+",product="+esc(p.Product),
		"-serial", "file:"+filepath.Join(s.Dir, consoleFile),
		// Relative when too long for a sockaddr: qemu runs in s.Dir.
		"-qmp", "unix:"+esc(qmp.SocketArg(filepath.Join(s.Dir, monitorFile)))+",server=on,wait=off",
		"-pidfile", filepath.Join(s.Dir, pidFile),
		"-daemonize",
	)
	a = append(a, hotplugArgs(p)...)
	if s.Arch == "amd64" {
		a = append(a, hostcheck.CPUArgs(accel)...)
	}
	if s.BootMode == BootUEFI {
		if _, err := os.Stat(firmware); err != nil {
			return nil, fmt.Errorf("vm: UEFI firmware for %s: %w (install ovmf or qemu-efi-aarch64)", s.Arch, err)
		}
		a = append(a, "-bios", firmware)
	}
	return append([]string{bin}, a...), nil
}

// rootDevice is the root disk's qemu device for p's disk bus.
func rootDevice(p Platform) string {
	if p.DiskBus == "virtio" {
		return "virtio-blk-pci,drive=root,serial=vol0drover"
	}
	return "nvme,drive=root,serial=vol0drover"
}

// launch runs qemu, which daemonizes (qemuproc.Start), and returns the VM's PID.
func launch(ctx context.Context, s Spec, argv []string) (int, error) {
	os.Remove(filepath.Join(s.Dir, monitorFile)) // a socket left by an earlier boot in the same directory
	pid, err := qemuproc.Start(ctx, argv, s.Dir, filepath.Join(s.Dir, pidFile), filepath.Join(s.Dir, launchLog), launchLimit, killLimit)
	if err != nil {
		return 0, fmt.Errorf("vm: starting %s: %w", s.Disk, err)
	}
	return pid, nil
}

// kill stops the qemu of dir (SIGTERM, then SIGKILL) and waits until it is gone.
func kill(pid int, dir string) error {
	if err := qemuproc.Kill(pid, filepath.Join(dir, pidFile), killLimit); err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	return nil
}
