package vm

import (
	"fmt"
	"net/netip"
)

// Platform is the virtual hardware and network a cloud presents to its instances: what a custom
// image must cope with there. EC2, Vultr and DigitalOcean are the platforms of the cloud lab's fakes.
type Platform struct {
	// Name is the platform's name in errors and logs.
	Name string
	// Vendor and Product are the SMBIOS system vendor and product, which Linux shows in
	// /sys/class/dmi/id/sys_vendor and product_name and drover-boot reads to know where it runs.
	Vendor, Product string
	// DiskBus is how the root disk is attached: "nvme" (EC2 Nitro: /dev/nvme0n1) or "virtio"
	// (KVM clouds: /dev/vda).
	DiskBus string
	// VolumeBus is how a volume attached to a running instance shows: VolumeNVMe, VolumeVirtio
	// or VolumeSCSI.
	VolumeBus string
	// Net is the guest's network (qemu's user network). It must contain 169.254.169.254, the
	// metadata service, since qemu only forwards guest connections to addresses inside it.
	Net netip.Prefix
	// Gateway is the host side of Net: the guest's default route.
	Gateway netip.Addr
	// DHCPStart is the first address the network's DHCP server leases, and where forwarded ports
	// are sent unless Spec.GuestAddress says otherwise.
	DHCPStart netip.Addr
}

// The platforms of the cloud lab's fakes.
var (
	// EC2 is an EC2 Nitro instance: NVMe disk, a NIC on EC2's link-local network with DHCP.
	EC2 = Platform{
		Name: "ec2", Vendor: "Amazon EC2", Product: "cloudlab", DiskBus: "nvme", VolumeBus: VolumeNVMe,
		Net: netip.MustParsePrefix("169.254.169.0/24"), Gateway: netip.MustParseAddr("169.254.169.1"),
		DHCPStart: netip.MustParseAddr("169.254.169.15"),
	}
	// Vultr is a Vultr cloud compute instance: virtio disk, its main IPv4 address by DHCP.
	Vultr = Platform{
		Name: "vultr", Vendor: "Vultr", Product: "VC2", DiskBus: "virtio", VolumeBus: VolumeVirtio,
		Net: netip.MustParsePrefix("169.254.0.0/16"), Gateway: netip.MustParseAddr("169.254.0.1"),
		DHCPStart: netip.MustParseAddr("169.254.10.15"),
	}
	// DigitalOcean is a droplet: virtio disk, and an address the image must configure itself from
	// the metadata service (DigitalOcean runs no DHCP for droplets; qemu's user network always
	// answers DHCP, so a fake droplet's address from the metadata is elsewhere than DHCPStart and
	// its ports are forwarded there through Spec.GuestAddress).
	DigitalOcean = Platform{
		Name: "digitalocean", Vendor: "DigitalOcean", Product: "Droplet", DiskBus: "virtio", VolumeBus: VolumeSCSI,
		Net: netip.MustParsePrefix("169.254.0.0/16"), Gateway: netip.MustParseAddr("169.254.0.1"),
		DHCPStart: netip.MustParseAddr("169.254.10.15"),
	}
)

func (p Platform) validate() error {
	switch {
	case p.DiskBus != "nvme" && p.DiskBus != "virtio":
		return fmt.Errorf("vm: platform %q: disk bus %q: want nvme or virtio", p.Name, p.DiskBus)
	case p.VolumeBus != VolumeNVMe && p.VolumeBus != VolumeVirtio && p.VolumeBus != VolumeSCSI:
		return fmt.Errorf("vm: platform %q: volume bus %q: want %s, %s or %s", p.Name, p.VolumeBus, VolumeNVMe, VolumeVirtio, VolumeSCSI)
	case !p.Net.Contains(metadataIP):
		return fmt.Errorf("vm: platform %q: network %v: want one that contains the metadata service %v", p.Name, p.Net, metadataIP)
	case !p.Net.Contains(p.Gateway) || !p.Net.Contains(p.DHCPStart):
		return fmt.Errorf("vm: platform %q: gateway %v and DHCP start %v: want both in %v", p.Name, p.Gateway, p.DHCPStart, p.Net)
	case p.Vendor == "":
		return fmt.Errorf("vm: platform %q: no SMBIOS vendor", p.Name)
	}
	return nil
}
