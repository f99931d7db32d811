package main

// The lab's segment (plugins/compute/qemu, segment.go): a lab with `segment` set gives each VM a
// second NIC on a segment shared by the lab's VMs, and tells the VM its address there in fw_cfg
// (opt/drover/segment: "ADDRESS/BITS MAC"), as a cloud's metadata tells a VPC interface's. No DHCP
// runs there, so drover-boot configures the NIC the way it configures Vultr's VPC interface: a
// systemd-networkd file of its own in /run, matched by the MAC, applied with networkctl. It does
// so before anything else, so the role's services (started after drover-boot) find the address up.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// labSegmentEntry is the fw_cfg entry, next to the lab's mark, that holds the segment address.
const labSegmentEntry = "segment"

// labSegmentFile is where the segment NIC's networkd configuration goes, under the root.
const labSegmentFile = "run/systemd/network/10-drover-lab-segment.network"

// labSegment configures the segment NIC of a lab VM whose lab has a segment, and returns its
// address there; the zero Addr on a machine that is not a lab VM or whose lab has no segment.
// Rerunning it rewrites the same file and applies it again.
func (b *boot) labSegment(ctx context.Context) (netip.Addr, error) {
	if !b.labVM() {
		return netip.Addr{}, nil
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(b.c.FwCfgPath)), labSegmentEntry, "raw"))
	if errors.Is(err, fs.ErrNotExist) {
		return netip.Addr{}, nil
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lab segment: %w", err)
	}
	addr, mac, err := parseLabSegment(string(raw))
	if err != nil {
		return netip.Addr{}, err
	}
	nw := b.c.Net
	if nw == nil {
		nw = hostNet{}
	}
	links, err := nw.Links(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lab segment: %w", err)
	}
	link := ""
	for _, l := range links {
		if strings.EqualFold(l.MAC, mac) {
			link = l.Name
		}
	}
	if link == "" {
		return netip.Addr{}, fmt.Errorf("lab segment: no link has MAC %s (the lab's segment NIC; %d ethernet links)", mac, len(links))
	}
	file := fmt.Sprintf("# drover-boot: this lab VM's NIC on the lab's segment (fw_cfg %s; no DHCP there)\n[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
		labSegmentEntry, mac, addr)
	path := filepath.Join(b.c.Root, labSegmentFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return netip.Addr{}, fmt.Errorf("lab segment: %w", err)
	}
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		return netip.Addr{}, fmt.Errorf("lab segment: %w", err)
	}
	if err := nw.Apply(ctx, link); err != nil {
		return netip.Addr{}, fmt.Errorf("lab segment: applying %s: %w", path, err)
	}
	b.say(b.c.Stdout, "lab segment: configured %s as %s", link, addr)
	return addr.Addr(), nil
}

// parseLabSegment reads "ADDRESS/BITS MAC": a private IPv4 address with its prefix length, and the
// NIC's MAC.
func parseLabSegment(s string) (netip.Prefix, string, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return netip.Prefix{}, "", fmt.Errorf("lab segment: fw_cfg %s: want \"ADDRESS/BITS MAC\", got %d field(s)", labSegmentEntry, len(f))
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil || !p.Addr().Is4() || !p.Addr().IsPrivate() {
		return netip.Prefix{}, "", fmt.Errorf("lab segment: fw_cfg %s: address %q: want a private IPv4 address with its prefix length", labSegmentEntry, f[0])
	}
	hw, err := net.ParseMAC(f[1])
	if err != nil || len(hw) != 6 {
		return netip.Prefix{}, "", fmt.Errorf("lab segment: fw_cfg %s: MAC %q: want six hex bytes", labSegmentEntry, f[1])
	}
	return p, hw.String(), nil
}
