// Package qemu is the lab's compute provider: each instance is a qemu-system VM on this machine,
// reached through its own loopback address.
package qemu

import (
	"net/netip"

	"github.com/drover-dev/drover/plugins/config"
)

// Config is the compute "qemu" block.
type Config struct {
	// Memory per instance in MiB.
	Memory int `hcl:"memory,optional"`
	// CPUs per instance.
	CPUs int `hcl:"cpus,optional"`
	// Accel is "auto" (KVM when a probe shows it works, TCG otherwise), "kvm" or "tcg".
	Accel string `hcl:"accel,optional"`
	// Firmware is "uefi" (OVMF) or "bios" (SeaBIOS).
	Firmware string `hcl:"firmware,optional"`
	// Network is the loopback range instances get their addresses from, such as "127.0.10.0/24".
	Network string `hcl:"network,optional"`
	// OVMF is the UEFI firmware file for firmware "uefi".
	OVMF string `hcl:"ovmf,optional"`
	// Isolate cuts the guests off from the host and the outside (user-mode networking with
	// restrict=on): only the port forwards reach them. Off by default, because guests fetch their
	// secrets from a Vault on the host at boot.
	Isolate bool `hcl:"isolate,optional"`
	// Dir is where the lab keeps its VMs (records, disks' overlays, volumes, monitors), under
	// Dir/lab; empty means the state directory. Relative to the fleet file's directory. Several
	// state directories on one host (a team's clones, a CI runner beside a person) share one lab by
	// naming the same directory: every change to it is made under its flock.
	Dir string `hcl:"dir,optional"`
	// Segment, when set, is a private IPv4 range such as "10.77.0.0/24" on which the lab's VMs
	// reach each other: each VM gets a second NIC on one shared L2 segment (segment.go) and a
	// stable address on it, which it is told at boot and the provider reports as the instance's
	// Private address. A raft cluster's nodes join and replicate over it; drover keeps reaching
	// each VM through its loopback address. Empty: no second NIC, and VMs cannot reach each other.
	Segment string `hcl:"segment,optional"`
}

// NewDefaultConfig returns the defaults, with DROVER_QEMU_ACCEL and DROVER_QEMU_MEMORY applied.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{
		Memory:   512,
		CPUs:     1,
		Accel:    config.String(env, "DROVER_QEMU_ACCEL", "auto"),
		Firmware: "uefi",
		Network:  "127.0.10.0/24",
		OVMF:     "/usr/share/ovmf/OVMF.fd",
	}
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	switch {
	case c.Memory < 128 || c.Memory > 1<<20:
		return config.Errorf("memory", "must be between 128 and 1048576 MiB, got %d", c.Memory)
	case c.CPUs < 1 || c.CPUs > 64:
		return config.Errorf("cpus", "must be between 1 and 64, got %d", c.CPUs)
	case c.Accel != "auto" && c.Accel != "kvm" && c.Accel != "tcg":
		return config.Errorf("accel", "must be \"auto\", \"kvm\" or \"tcg\", got %q", c.Accel)
	case c.Firmware != "uefi" && c.Firmware != "bios":
		return config.Errorf("firmware", "must be \"uefi\" or \"bios\", got %q", c.Firmware)
	case c.Firmware == "uefi" && c.OVMF == "":
		return config.Errorf("ovmf", "must name the UEFI firmware file when firmware is \"uefi\"")
	}
	p, err := netip.ParsePrefix(c.Network)
	if err != nil || !p.Addr().IsLoopback() || !p.Addr().Is4() || p.Bits() > 30 {
		return config.Errorf("network", "must be an IPv4 loopback range such as \"127.0.10.0/24\", got %q", c.Network)
	}
	return c.validateSegment(p)
}

// validateSegment checks the segment: a private IPv4 range, given by its first address, with room
// for an address per address of network (a VM's segment address is its loopback address moved
// into the segment).
func (c *Config) validateSegment(network netip.Prefix) error {
	if c.Segment == "" {
		return nil
	}
	s, err := netip.ParsePrefix(c.Segment)
	if err != nil || !s.Addr().Is4() || !s.Addr().IsPrivate() || s.Masked() != s {
		return config.Errorf("segment", "must be a private IPv4 range given by its first address, such as \"10.77.0.0/24\", got %q", c.Segment)
	}
	if s.Bits() > network.Bits() {
		return config.Errorf("segment", "%s is smaller than network %s: each VM's segment address is its loopback address moved into the segment, so the segment needs at least /%d", s, network, network.Bits())
	}
	return nil
}
