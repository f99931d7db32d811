package qemu

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The lab's segment (Config.Segment): each VM's user-mode network is its own, so VMs cannot reach
// each other through it; with a segment, every VM gets a second NIC on a qemu "socket" netdev that
// sends its frames to a UDP multicast group on the host's loopback, and receives every other
// frame sent there: one L2 segment shared by the lab's VMs, with no bridge, tap or privilege on
// the host. The group and port are derived from the lab's directory and the segment, so two labs
// on one host (tests running side by side, two fleets) are two segments. A VM's address on it is
// its loopback address moved into the segment (127.0.78.5 in 127.0.78.0/24 is 10.77.0.5 in
// 10.77.0.0/24): unique within the lab because loopback addresses are, stable for the VM's life,
// and known before it boots. The guest is told it through fw_cfg (opt/drover/segment: the address
// with its prefix length and the NIC's MAC); drover-boot configures the NIC with it.

// segmentEntry is the fw_cfg entry that tells the guest its segment address and NIC.
const segmentEntry = "opt/drover/segment"

// segmentOf returns the segment address of the VM at loopback address addr, with the segment's
// prefix length; the zero Prefix when the lab has no segment.
func (p *Provider) segmentOf(addr netip.Addr) netip.Prefix {
	if p.cfg.Segment == "" || !addr.IsValid() {
		return netip.Prefix{}
	}
	seg := netip.MustParsePrefix(p.cfg.Segment) // Validate checked it
	offset := binary.BigEndian.Uint32(addr.AsSlice()) - binary.BigEndian.Uint32(p.network.Masked().Addr().AsSlice())
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(seg.Addr().AsSlice())+offset)
	return netip.PrefixFrom(netip.AddrFrom4(b), seg.Bits())
}

// segmentMAC is the MAC of the segment NIC of the VM at segment address a: qemu's prefix and the
// address's last three bytes, so no two VMs of a segment share one (qemu would give every VM the
// same default MAC).
func segmentMAC(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[1], b[2], b[3])
}

// segmentGroup is the multicast group and UDP port of the lab's segment: 239.255.0.0/16
// (organization-local scope, which stays on this host's loopback) and a port of 20000-59999, both
// from a hash of the lab's directory and the segment.
func (p *Provider) segmentGroup() netip.AddrPort {
	h := sha256.Sum256([]byte("drover lab segment\x00" + p.labDir() + "\x00" + p.cfg.Segment))
	port := 20000 + binary.BigEndian.Uint16(h[2:4])%40000
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, h[0], h[1]}), port)
}

// segmentArgs are qemu's arguments for the segment NIC of a VM at segment address seg; none when
// seg is the zero Prefix.
func (p *Provider) segmentArgs(seg netip.Prefix) []string {
	if !seg.IsValid() {
		return nil
	}
	mac := segmentMAC(seg.Addr())
	return []string{
		"-netdev", fmt.Sprintf("socket,id=n1,mcast=%s,localaddr=127.0.0.1", p.segmentGroup()),
		"-device", "virtio-net-pci,netdev=n1,mac=" + mac,
		"-fw_cfg", fmt.Sprintf("name=%s,string=%s %s", segmentEntry, seg, mac),
	}
}
