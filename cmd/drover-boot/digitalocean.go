package main

// DigitalOcean runs no DHCP for droplets: a droplet's public address, gateway and resolvers are
// in its metadata (/metadata/v1.json, interfaces.public[0].ipv4 and dns.nameservers), and its
// image must configure them itself, which cloud-init does in DigitalOcean's own images. drover
// images have no cloud-init, so drover-boot does it on a droplet (SMBIOS vendor DigitalOcean),
// before it reads the user-data (/metadata/v1/user-data):
//
//  1. The metadata service is at 169.254.169.254, on the link: while the NIC has no IPv4 address
//     (no DHCP), drover-boot gives it a random link-local address (169.254.0.0/16) to ask from.
//  2. It reads /metadata/v1.json, retrying while the service cannot be reached (Wait).
//  3. It writes /run/systemd/network/10-drover-digitalocean.network for the public interface
//     (matched by the metadata's MAC, else the first ethernet link): the address, the gateway as
//     default route, the resolvers; then networkctl reload and reconfigure apply it, and the
//     link-local address is removed.
//
// Why systemd-networkd rather than setting the address with ip directly: every drover image
// already has networkd manage its NICs (80-drover-dhcp.network, DHCP on every link); a file of
// its own, which sorts first, takes the public link over from the DHCP one, so networkd neither
// fights the static address nor drops it when it restarts or the link flaps, and the resolvers
// reach systemd-resolved (and /etc/resolv.conf) the way DHCP's would. The file is in /run, not
// /etc: it is the droplet's, made again from the metadata at every boot, and never part of the
// image.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// dropletNetworkFile is where the droplet's network configuration goes, under the root.
const dropletNetworkFile = "run/systemd/network/10-drover-digitalocean.network"

// dropletMetadata is the part of /metadata/v1.json drover-boot uses.
type dropletMetadata struct {
	DropletID  int `json:"droplet_id"`
	Interfaces struct {
		Public []struct {
			IPv4 struct {
				IPAddress string `json:"ip_address"`
				Netmask   string `json:"netmask"`
				Gateway   string `json:"gateway"`
			} `json:"ipv4"`
			MAC string `json:"mac"`
		} `json:"public"`
	} `json:"interfaces"`
	DNS struct {
		Nameservers []string `json:"nameservers"`
	} `json:"dns"`
}

// netLink is one ethernet link of the machine.
type netLink struct {
	Name string
	MAC  string
	IPv4 bool // it has an IPv4 address
}

// dropletNet is what drover-boot changes of the network on a droplet; hostNet is the system's.
type dropletNet interface {
	// Links returns the ethernet links, in the kernel's order.
	Links(ctx context.Context) ([]netLink, error)
	AddAddress(ctx context.Context, link string, p netip.Prefix) error
	DelAddress(ctx context.Context, link string, p netip.Prefix) error
	// Apply makes systemd-networkd read its files again and configure link anew.
	Apply(ctx context.Context, link string) error
}

// digitalOcean configures the droplet's network from its metadata, then reads its user-data.
func (b *boot) digitalOcean(ctx context.Context, base string, deadline time.Time) ([]byte, string, error) {
	const src = "digitalocean"
	nw := b.c.Net
	if nw == nil {
		nw = hostNet{}
	}
	var md dropletMetadata
	var ll netip.Prefix
	var llLink string
	for {
		if !ll.IsValid() {
			links, err := nw.Links(ctx)
			if err != nil {
				return nil, "", fmt.Errorf("digitalocean: %w", err)
			}
			if len(links) > 0 && !links[0].IPv4 {
				ll, llLink = linkLocal(), links[0].Name
				if err := nw.AddAddress(ctx, llLink, ll); err != nil {
					return nil, "", fmt.Errorf("digitalocean: a link-local address to reach the metadata service: %w", err)
				}
			}
		}
		resp, data, err := metadataRead(ctx, base, "/metadata/v1.json", "", 1<<20)
		var te *transportError
		if errors.As(err, &te) {
			b.mdUnreachable = te
			if again, err := waitRetry(ctx, deadline); !again {
				if ll.IsValid() {
					_ = nw.DelAddress(context.WithoutCancel(ctx), llLink, ll)
				}
				return nil, "", err
			}
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("metadata service %s (%s): GET /metadata/v1.json: %s", base, src, resp.Status)
		}
		if err := json.Unmarshal(data, &md); err != nil {
			return nil, "", fmt.Errorf("metadata service %s (%s): /metadata/v1.json: %w", base, src, err)
		}
		break
	}
	link, err := b.configureDroplet(ctx, nw, md)
	if err != nil {
		return nil, "", err
	}
	if ll.IsValid() {
		_ = nw.DelAddress(ctx, llLink, ll) // networkd may have removed it already
	}
	b.say(b.c.Stdout, "droplet %d: configured %s from the metadata", md.DropletID, link)
	// networkd reconfigures the link now (the addresses go, then come back with the route): the
	// service is unreachable for a moment, so the read is retried until the deadline.
	var resp *http.Response
	var data []byte
	for again := time.Now().Add(b.c.Wait); ; {
		resp, data, err = metadataRead(ctx, base, "/metadata/v1/user-data", "", bootdata.MaxSize+1)
		var te *transportError
		if !errors.As(err, &te) {
			break
		}
		b.mdUnreachable = te
		if retry, werr := waitRetry(ctx, again); !retry {
			if werr != nil {
				return nil, "", werr
			}
			return nil, "", fmt.Errorf("metadata service %s (%s): unreachable once the network was configured from its metadata: %w", base, src, te)
		}
	}
	switch {
	case err != nil:
		return nil, "", err
	case resp.StatusCode == http.StatusNotFound:
		return nil, src, nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("metadata service %s (%s): GET /metadata/v1/user-data: %s", base, src, resp.Status)
	case len(data) > bootdata.MaxSize:
		return nil, "", fmt.Errorf("metadata service %s (%s): user-data larger than %d bytes", base, src, bootdata.MaxSize)
	case len(strings.TrimSpace(string(data))) == 0:
		return nil, src, nil
	}
	return data, src, nil
}

// configureDroplet writes the networkd file of the metadata's public interface and applies it;
// it returns what it configured, for the console.
func (b *boot) configureDroplet(ctx context.Context, nw dropletNet, md dropletMetadata) (string, error) {
	if len(md.Interfaces.Public) == 0 {
		return "", errors.New("digitalocean: the metadata has no public interface")
	}
	pub := md.Interfaces.Public[0]
	addr, err := netip.ParseAddr(pub.IPv4.IPAddress)
	if err != nil || !addr.Is4() {
		return "", fmt.Errorf("digitalocean: the metadata's public address %q is not an IPv4 address", pub.IPv4.IPAddress)
	}
	bits, err := maskBits(pub.IPv4.Netmask)
	if err != nil {
		return "", fmt.Errorf("digitalocean: the metadata's netmask: %w", err)
	}
	gw, err := netip.ParseAddr(pub.IPv4.Gateway)
	if err != nil || !gw.Is4() {
		return "", fmt.Errorf("digitalocean: the metadata's gateway %q is not an IPv4 address", pub.IPv4.Gateway)
	}
	links, err := nw.Links(ctx)
	if err != nil {
		return "", fmt.Errorf("digitalocean: %w", err)
	}
	if len(links) == 0 {
		return "", errors.New("digitalocean: no ethernet link to configure")
	}
	link := links[0]
	for _, l := range links {
		if strings.EqualFold(l.MAC, pub.MAC) {
			link = l
		}
	}
	var f strings.Builder
	f.WriteString("# drover-boot: this droplet's public interface, from DigitalOcean's metadata (no DHCP there)\n[Match]\n")
	if strings.EqualFold(link.MAC, pub.MAC) {
		fmt.Fprintf(&f, "MACAddress=%s\n", strings.ToLower(pub.MAC))
	} else {
		fmt.Fprintf(&f, "Name=%s\n", link.Name)
	}
	fmt.Fprintf(&f, "\n[Network]\nAddress=%s\nGateway=%s\n", netip.PrefixFrom(addr, bits), gw)
	for _, ns := range md.DNS.Nameservers {
		if a, err := netip.ParseAddr(ns); err == nil {
			fmt.Fprintf(&f, "DNS=%s\n", a)
		}
	}
	f.WriteString("LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
	path := filepath.Join(b.c.Root, dropletNetworkFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("digitalocean: %w", err)
	}
	if err := os.WriteFile(path, []byte(f.String()), 0o644); err != nil {
		return "", fmt.Errorf("digitalocean: %w", err)
	}
	if err := nw.Apply(ctx, link.Name); err != nil {
		return "", fmt.Errorf("digitalocean: applying %s: %w", path, err)
	}
	return fmt.Sprintf("%s as %s via %s", link.Name, netip.PrefixFrom(addr, bits), gw), nil
}

// maskBits is the prefix length of a dotted netmask ("255.255.240.0" is 20).
func maskBits(mask string) (int, error) {
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() {
		return 0, fmt.Errorf("%q is not an IPv4 netmask", mask)
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&(1<<31) != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("%q is not a contiguous netmask", mask)
	}
	return n, nil
}

// linkLocal is a random address of 169.254.100.0-169.254.199.255 (clear of the metadata
// service's 169.254.169.0/24), /16.
func linkLocal() netip.Prefix {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	third := 100 + b[0]%100
	if third == 169 {
		third = 170
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, third, 1 + b[1]%254}), 16)
}

// hostNet is the system's network: iproute2 and networkctl.
type hostNet struct{}

func (hostNet) Links(ctx context.Context) ([]netLink, error) {
	out, err := exec.CommandContext(ctx, "ip", "-j", "addr", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip addr show: %w", err)
	}
	var links []struct {
		Name     string `json:"ifname"`
		Type     string `json:"link_type"`
		MAC      string `json:"address"`
		AddrInfo []struct {
			Family string `json:"family"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("ip -j addr show: %w", err)
	}
	var res []netLink
	for _, l := range links {
		if l.Type != "ether" {
			continue
		}
		nl := netLink{Name: l.Name, MAC: l.MAC}
		for _, a := range l.AddrInfo {
			nl.IPv4 = nl.IPv4 || a.Family == "inet"
		}
		res = append(res, nl)
	}
	return res, nil
}

func (hostNet) AddAddress(ctx context.Context, link string, p netip.Prefix) error {
	if out, err := exec.CommandContext(ctx, "ip", "link", "set", link, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set %s up: %v: %s", link, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "ip", "addr", "add", p.String(), "dev", link).CombinedOutput(); err != nil {
		return fmt.Errorf("ip addr add %s dev %s: %v: %s", p, link, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (hostNet) DelAddress(ctx context.Context, link string, p netip.Prefix) error {
	return exec.CommandContext(ctx, "ip", "addr", "del", p.String(), "dev", link).Run()
}

func (hostNet) Apply(ctx context.Context, link string) error {
	for _, args := range [][]string{{"reload"}, {"reconfigure", link}} {
		if out, err := exec.CommandContext(ctx, "networkctl", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("networkctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
