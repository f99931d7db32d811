package dolab

// The droplet metadata service, as DigitalOcean documents it
// (https://docs.digitalocean.com/reference/api/metadata-api/): GET /metadata/v1.json (the whole
// document: droplet_id, hostname, user_data, vendor_data, public_keys, region, interfaces with
// public[0].ipv4 {ip_address, netmask, gateway} and mac, floating_ip and reserved_ip, dns
// {nameservers}, tags, features {dhcp_enabled: false}), GET /metadata/v1/id, /hostname, /region,
// /user-data (404 when the droplet has none), /tags. No authentication: only the droplet reaches
// it. Left out: the per-field paths of interfaces/, vendor-data's content, IPv6 and anchor
// addresses, private interfaces.
//
// The addresses are the lab's: the public interface's address is the droplet's Guest address in
// the guest network of vm.DigitalOcean (169.254.0.0/16, gateway 169.254.0.1, qemu's resolver at
// 169.254.10.253), not the loopback address the API reports, which is where the host reaches it.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Guest network of vm.DigitalOcean, as the metadata gives it.
const (
	guestNetmask    = "255.255.0.0"
	guestGateway    = "169.254.0.1"
	guestNameserver = "169.254.10.253"
	// qemuMAC is the MAC address qemu gives the guest's NIC (package vm sets none), so that the
	// metadata names the guest's real interface as DigitalOcean's does.
	qemuMAC = "52:54:00:12:34:56"
)

// Metadata is the metadata service of droplet id, as its guest sees it at 169.254.169.254. It is
// what MachineSpec.Metadata holds; tests without a Hypervisor call it directly. It answers 404 to
// everything once the droplet is gone.
func (c *Cloud) Metadata(id int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		c.mu.Lock()
		d := c.droplets[id]
		var doc map[string]any
		var user string
		var tags []string
		if d != nil {
			doc, user, tags = c.metadataDoc(d), d.UserData, d.Tags
		}
		c.mu.Unlock()
		if d == nil {
			http.NotFound(w, r)
			return
		}
		text := func(s string) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, s)
		}
		switch r.URL.Path {
		case "/metadata/v1.json":
			w.Header().Set("Content-Type", "application/json")
			writeJSON(w, doc)
		case "/metadata/v1/id":
			text(strconv.Itoa(id))
		case "/metadata/v1/hostname":
			text(doc["hostname"].(string))
		case "/metadata/v1/region":
			text(c.opts.Region)
		case "/metadata/v1/tags":
			text(strings.Join(tags, "\n"))
		case "/metadata/v1/user-data":
			if user == "" {
				http.NotFound(w, r)
				return
			}
			text(user)
		default:
			http.NotFound(w, r)
		}
	})
}

// metadataDoc is /metadata/v1.json of d; c.mu is held.
func (c *Cloud) metadataDoc(d *droplet) map[string]any {
	reserved := map[string]any{"active": false}
	for addr, ip := range c.ips {
		if ip.droplet == d.ID {
			reserved = map[string]any{"active": true, "ip_address": addr.String()}
		}
	}
	doc := map[string]any{
		"droplet_id": d.ID, "hostname": d.Name, "vendor_data": "", "public_keys": []string{}, "auth_key": "",
		"region": c.opts.Region, "tags": d.Tags,
		"interfaces": map[string]any{"public": []map[string]any{{
			"ipv4": map[string]string{"ip_address": d.Guest.String(), "netmask": guestNetmask, "gateway": guestGateway},
			"mac":  qemuMAC, "type": "public",
		}}},
		"floating_ip": map[string]any{"ipv4": reserved},
		"reserved_ip": map[string]any{"ipv4": reserved},
		"dns":         map[string]any{"nameservers": []string{guestNameserver}},
		"features":    map[string]any{"dhcp_enabled": false},
	}
	if d.UserData != "" {
		doc["user_data"] = d.UserData
	}
	return doc
}

func writeJSON(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }
