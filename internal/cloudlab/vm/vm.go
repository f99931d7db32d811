// Package vm boots a raw disk under qemu the way a cloud's hypervisor would present it to its guest,
// for the cloud lab's fakes (DESIGN.md §7): a fake cloud boots what was published to it with this.
// Spec.Platform says which cloud's hardware the guest sees (EC2 when unset; Vultr; DigitalOcean).
//
// On EC2 the guest sees a Nitro instance: its disk on NVMe, UEFI (OVMF) or legacy BIOS firmware, the
// serial console on ttyS0 (read back with Console, as GetConsoleOutput does), one NIC in another PCI
// slot and with another name than the local lab's, and a user-mode network on EC2's link-local
// 169.254.169.0/24 where 169.254.169.254:80 is the instance's metadata service, and the SMBIOS system
// vendor "Amazon EC2" that drover-boot reads to know it should wait for it. Nothing marks the VM
// as the lab's (no fw_cfg opt/drover/lab), so drover-boot behaves as on a cloud instance.
package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Spec is what Start boots. It mirrors awslab's MachineSpec (minus the instance ID) plus the VM's
// size.
type Spec struct {
	// Disk is the raw disk file. The machine owns it: the guest writes to it.
	Disk string
	// Arch is "amd64" (qemu-system-x86_64, q35) or "arm64" (qemu-system-aarch64, virt, UEFI only).
	Arch string
	// BootMode is "uefi" or "legacy-bios"; empty means uefi.
	BootMode string
	// Address is the host loopback address the instance's ports are forwarded from.
	Address netip.Addr
	// Ports are forwarded from Address:port to the same port of the guest.
	Ports []int
	// Platform is the cloud whose hardware and network the guest sees; nil means EC2.
	Platform *Platform
	// GuestAddress is where Ports are forwarded to in the guest: the address the guest configures
	// for itself (a droplet's, from its metadata). Zero means the platform's DHCPStart.
	GuestAddress netip.Addr
	// Metadata is the instance's metadata service, reached by the guest at 169.254.169.254:80. Nil
	// means none: the guest's connections there are refused.
	Metadata http.Handler
	// Routes map guest-visible addresses, which must be in the platform's network (qemu's user
	// network only forwards addresses inside it), to host loopback addresses: services "in the VPC".
	Routes map[netip.AddrPort]netip.AddrPort
	// Dir is the machine's own directory: console log, pid file, qemu's log.
	Dir string
	// Memory is the guest's memory in MiB; zero means 1024.
	Memory int
	// CPUs is the guest's CPU count; zero means 1.
	CPUs int
	// Accel is "kvm" or "tcg"; empty chooses KVM when a probe guest runs under it, else TCG.
	Accel string
}

// Boot modes, as EC2's RegisterImage spells them.
const (
	BootUEFI       = "uefi"
	BootLegacyBIOS = "legacy-bios"
)

// The metadata service, at the same link-local address on every platform.
var (
	metadataIP  = netip.MustParseAddr("169.254.169.254")
	metadataAPI = netip.AddrPortFrom(metadataIP, 80)
)

// Files in Spec.Dir.
const (
	consoleFile = "console.log"
	pidFile     = "qemu.pid"
	launchLog   = "qemu.log"
)

// Machine is one running VM. Its methods are safe for concurrent use.
type Machine struct {
	pid      int
	dir      string
	name     string // the directory's base name, for errors
	platform Platform
	servers  []*http.Server // set up by Start, only closed after

	hotplugMu sync.Mutex        // one hot-plug at a time; guards ports
	ports     map[string]string // volume device id -> the hot-plug port it sits on
}

// Start boots s and returns once qemu runs (its disk opened, forwards bound), not once the guest
// has booted. qemu runs detached (daemonized) and is found by its PID: call Stop, also when the
// caller fails later, or the VM runs on. A Start that fails leaves no process behind and no
// listener open; the files in s.Dir stay for the caller to read.
func Start(ctx context.Context, s Spec) (*Machine, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	s = s.withDefaults()
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("vm: directory %q: %w", s.Dir, err)
	}
	s.Dir = dir
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	accel, err := chooseAccel(ctx, s)
	if err != nil {
		return nil, err
	}
	pipe, err := pipeProgram(ctx)
	if err != nil {
		return nil, err
	}
	m := &Machine{dir: s.Dir, name: filepath.Base(s.Dir), platform: *s.Platform, ports: map[string]string{}}
	fwds := map[netip.AddrPort]netip.AddrPort{}
	for guest, host := range s.Routes {
		fwds[guest] = host
	}
	if s.Metadata != nil {
		addr, err := m.serve(s.Metadata)
		if err != nil {
			m.closeServers()
			return nil, err
		}
		fwds[metadataAPI] = addr
	}
	a, err := args(s, accel, pipe, fwds)
	if err != nil {
		m.closeServers()
		return nil, err
	}
	m.pid, err = launch(ctx, s, a)
	if err != nil {
		m.closeServers()
		return nil, err
	}
	return m, nil
}

func (s Spec) validate() error {
	p := s.platform()
	if err := p.validate(); err != nil {
		return err
	}
	switch {
	case s.GuestAddress.IsValid() && (!p.Net.Contains(s.GuestAddress) || s.GuestAddress == p.Gateway || s.GuestAddress == metadataIP):
		return fmt.Errorf("vm: guest address %v: want an address in %v other than the gateway and the metadata service", s.GuestAddress, p.Net)
	case s.Disk == "":
		return errors.New("vm: no disk")
	case s.Dir == "":
		return errors.New("vm: no directory")
	case s.Arch != "amd64" && s.Arch != "arm64":
		return fmt.Errorf("vm: architecture %q: want amd64 or arm64", s.Arch)
	case s.BootMode != "" && s.BootMode != BootUEFI && s.BootMode != BootLegacyBIOS:
		return fmt.Errorf("vm: boot mode %q: want %s or %s", s.BootMode, BootUEFI, BootLegacyBIOS)
	case s.Arch == "arm64" && s.BootMode == BootLegacyBIOS:
		return fmt.Errorf("vm: boot mode %s on arm64: arm64 boots UEFI only", BootLegacyBIOS)
	case len(s.Ports) > 0 && !s.Address.IsLoopback():
		return fmt.Errorf("vm: address %v: want a loopback address to forward ports %v from", s.Address, s.Ports)
	case s.Accel != "" && s.Accel != "kvm" && s.Accel != "tcg":
		return fmt.Errorf("vm: accelerator %q: want kvm, tcg or empty (choose)", s.Accel)
	}
	if _, err := os.Stat(s.Disk); err != nil {
		return fmt.Errorf("vm: disk: %w", err)
	}
	for _, p := range s.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("vm: port %d: want 1-65535", p)
		}
	}
	for guest, host := range s.Routes {
		if !p.Net.Contains(guest.Addr()) || guest == metadataAPI || guest.Port() == 0 {
			return fmt.Errorf("vm: route %v: want a guest address:port in %v other than the metadata service %v", guest, p.Net, metadataAPI)
		}
		if !host.Addr().IsLoopback() || host.Port() == 0 {
			return fmt.Errorf("vm: route %v -> %v: want a host loopback address:port", guest, host)
		}
	}
	return nil
}

// platform is s.Platform, or EC2.
func (s Spec) platform() Platform {
	if s.Platform == nil {
		return EC2
	}
	return *s.Platform
}

func (s Spec) withDefaults() Spec {
	p := s.platform()
	s.Platform = &p
	if !s.GuestAddress.IsValid() {
		s.GuestAddress = p.DHCPStart
	}
	if s.BootMode == "" {
		s.BootMode = BootUEFI
	}
	if s.Memory <= 0 {
		s.Memory = 1024
	}
	if s.CPUs <= 0 {
		s.CPUs = 1
	}
	s.Ports = slices.Clone(s.Ports)
	return s
}

// serve answers h on a new loopback listener and returns its address.
func (m *Machine) serve(h http.Handler) (netip.AddrPort, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("vm: metadata service listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	m.servers = append(m.servers, srv)
	go srv.Serve(l)
	return l.Addr().(*net.TCPAddr).AddrPort(), nil
}

func (m *Machine) closeServers() {
	for _, s := range m.servers {
		s.Close()
	}
}

func (m *Machine) qmpPath() string { return filepath.Join(m.dir, monitorFile) }

// PID is qemu's process ID.
func (m *Machine) PID() int { return m.pid }

// Console returns the serial console's output so far.
func (m *Machine) Console() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(m.dir, consoleFile))
	if err != nil {
		return nil, fmt.Errorf("vm: console: %w", err)
	}
	return b, nil
}

// Stop powers the VM off (SIGTERM, then SIGKILL: the instance is stateless beyond its disk), waits
// until the process is gone and closes the metadata service. It is idempotent (a VM already gone
// is no error), so a Stop that failed can be retried.
func (m *Machine) Stop() error {
	err := kill(m.pid, m.dir)
	m.closeServers()
	return err
}
