package main

// Vultr hands an instance its main IPv4 address by DHCP, which every drover image does on every
// link, but not the address of a VPC's interface: that one is in the metadata (/v1.json,
// interfaces[] with network-type "private": mac, ipv4.address, ipv4.netmask), and cloud-init's
// Vultr datasource configures it statically, matched by MAC. drover images have no cloud-init,
// so drover-boot does the same on Vultr (SMBIOS vendor Vultr), before it reads the user-data:
// for each private interface it writes /run/systemd/network/10-drover-vultr-<mac>.network (the
// address, no DHCP) and has systemd-networkd apply it. The file sorts before the images' DHCP
// file, so networkd stops asking DHCP on that link; it is in /run, made again at every boot from
// the instance's metadata and never part of the image. An instance without a VPC has no private
// interface, and nothing is written.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// vultrNetworkDir is where the VPC interfaces' networkd files go, under the root.
const vultrNetworkDir = "run/systemd/network"

// vultrMetadata is the part of /v1.json drover-boot uses.
type vultrMetadata struct {
	Interfaces []struct {
		NetworkType string `json:"network-type"`
		MAC         string `json:"mac"`
		IPv4        struct {
			Address string `json:"address"`
			Netmask string `json:"netmask"`
		} `json:"ipv4"`
	} `json:"interfaces"`
}

// vultrVPC configures the instance's VPC interfaces from its metadata. The metadata service is
// reached through the main link, which DHCP configures: while it cannot be reached, vultrVPC
// waits until deadline, then leaves the user-data read to report it. A private interface it
// cannot configure is an error: the instance would run without its VPC address.
func (b *boot) vultrVPC(ctx context.Context, base string, deadline time.Time) error {
	var md vultrMetadata
	for {
		resp, data, err := metadataRead(ctx, base, "/v1.json", "", 1<<20)
		var te *transportError
		if errors.As(err, &te) {
			b.mdUnreachable = te
			if again, _ := waitRetry(ctx, deadline); !again {
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			b.say(b.c.Stderr, "warning: metadata service %s (vultr): GET /v1.json: %s: no VPC interface configured", base, resp.Status)
			return nil
		}
		if err := json.Unmarshal(data, &md); err != nil {
			return fmt.Errorf("metadata service %s (vultr): /v1.json: %w", base, err)
		}
		break
	}
	nw := b.c.Net
	if nw == nil {
		nw = hostNet{}
	}
	for _, in := range md.Interfaces {
		if in.NetworkType != "private" {
			continue
		}
		what, err := b.configureVPC(ctx, nw, in.MAC, in.IPv4.Address, in.IPv4.Netmask)
		if err != nil {
			return fmt.Errorf("vultr: the VPC interface %s: %w", in.MAC, err)
		}
		b.say(b.c.Stdout, "vultr: configured the VPC interface %s from the metadata", what)
	}
	return nil
}

// configureVPC writes and applies the networkd file of one VPC interface.
func (b *boot) configureVPC(ctx context.Context, nw dropletNet, mac, address, netmask string) (string, error) {
	addr, err := netip.ParseAddr(address)
	if err != nil || !addr.Is4() {
		return "", fmt.Errorf("the metadata's address %q is not an IPv4 address", address)
	}
	bits, err := maskBits(netmask)
	if err != nil {
		return "", fmt.Errorf("the metadata's netmask: %w", err)
	}
	links, err := nw.Links(ctx)
	if err != nil {
		return "", err
	}
	var link string
	for _, l := range links {
		if strings.EqualFold(l.MAC, mac) {
			link = l.Name
		}
	}
	if link == "" {
		return "", fmt.Errorf("no link has MAC %s (links: %d)", mac, len(links))
	}
	mac = strings.ToLower(mac)
	file := fmt.Sprintf("# drover-boot: a VPC interface of this Vultr instance, from its metadata\n[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
		mac, netip.PrefixFrom(addr, bits))
	path := filepath.Join(b.c.Root, vultrNetworkDir, "10-drover-vultr-"+strings.ReplaceAll(mac, ":", "")+".network")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		return "", err
	}
	if err := nw.Apply(ctx, link); err != nil {
		return "", fmt.Errorf("applying %s: %w", path, err)
	}
	return fmt.Sprintf("%s as %s", link, netip.PrefixFrom(addr, bits)), nil
}
