package dolab

// Reserved IPs, as the API reference documents them: POST /v2/reserved_ips with {"region"} (or
// {"droplet_id"}, assigned at once) answers 202 and the reserved IP; GET /v2/reserved_ips
// (paginated) and /v2/reserved_ips/{ip} ({ip, region, droplet (null when unassigned), locked,
// project_id}); DELETE /v2/reserved_ips/{ip} (204); POST /v2/reserved_ips/{ip}/actions with
// {"type": "assign", "droplet_id"} or {"type": "unassign"} answers 201 and the action
// ("assign_ip", "unassign_ip", resource_type "reserved_ip"); GET
// /v2/reserved_ips/{ip}/actions/{action_id}. An assign moves the address from its holder in one
// step, as DigitalOcean's does: the fake switches its proxy's target when the action is asked
// for, and the IP stays locked until the action completes. Left out: refusing an action while
// the IP is locked, projects, IPv6 reserved IPs.
//
// A reserved IP is a loopback address on which the fake listens on Options.Ports and forwards
// each new connection to the droplet the address is assigned to at that moment (the droplet's
// public address, where the Hypervisor forwards into the guest); with no droplet, or one not
// active, a connection is closed at once. Connections already open stay with the old droplet.

import (
	"encoding/binary"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/drover-dev/drover/internal/cloudlab/addrproxy"
)

// ReservedIP is what the fake knows of one reserved IP, for tests.
type ReservedIP struct {
	IP      netip.Addr
	Droplet int // 0 when unassigned
}

type reservedIP struct {
	ip      netip.Addr
	droplet int
	pending *action // the last action, locked until it completes
	proxy   *addrproxy.Proxy
}

// ReservedIPs returns the reserved IPs that exist.
func (c *Cloud) ReservedIPs() []ReservedIP {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ReservedIP
	for _, ip := range c.sortedIPs() {
		out = append(out, ReservedIP{ip.ip, ip.droplet})
	}
	return out
}

func (c *Cloud) sortedIPs() []*reservedIP {
	out := make([]*reservedIP, 0, len(c.ips))
	for _, ip := range c.ips {
		out = append(out, ip)
	}
	slices.SortFunc(out, func(a, b *reservedIP) int { return a.ip.Compare(b.ip) })
	return out
}

func (c *Cloud) routeReservedIPs(r *http.Request, parts []string, body []byte) answer {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		var out []map[string]any
		for _, ip := range c.sortedIPs() {
			out = append(out, c.reservedIPJSON(ip))
		}
		return page(c, r, "reserved_ips", out)
	case len(parts) == 0 && r.Method == http.MethodPost:
		return c.createReservedIP(body)
	}
	addr, err := netip.ParseAddr(parts[0])
	ip := c.ips[addr]
	if err != nil || ip == nil {
		return notFound()
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		return answer{http.StatusOK, map[string]any{"reserved_ip": c.reservedIPJSON(ip)}}
	case len(parts) == 1 && r.Method == http.MethodDelete:
		delete(c.ips, addr)
		ip.proxy.Close()
		return answer{http.StatusNoContent, nil}
	case len(parts) == 2 && parts[1] == "actions" && r.Method == http.MethodPost:
		return c.reservedIPAction(ip, body)
	case len(parts) == 3 && parts[1] == "actions" && r.Method == http.MethodGet:
		id, err := strconv.Atoi(parts[2])
		if a := c.actions[id]; err != nil || a == nil || a.resourceType != "reserved_ip" || a.resourceID != ipID(addr) {
			return notFound()
		}
		return c.getAction(id)
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

func (c *Cloud) createReservedIP(body []byte) answer {
	var in struct {
		Region    string `json:"region"`
		DropletID int    `json:"droplet_id"`
		ProjectID string `json:"project_id"`
	}
	if err := decode(body, &in); err != nil {
		return c.bad("reserved IP create body: %v", err)
	}
	if in.DropletID != 0 && c.droplets[in.DropletID] == nil {
		return unprocessable("Droplet %d could not be found.", in.DropletID)
	}
	if in.DropletID == 0 && in.Region != c.opts.Region {
		return unprocessable("Region %q is not available (the fake serves %s).", in.Region, c.opts.Region)
	}
	addr, err := c.allocAddress()
	if err != nil {
		return unprocessable("%v", err)
	}
	ip := &reservedIP{ip: addr, droplet: in.DropletID}
	// The address reaches its droplet while that is active; the proxy asks at each connection.
	ip.proxy, err = addrproxy.Listen(addr, c.opts.Ports, func() netip.Addr {
		c.mu.Lock()
		defer c.mu.Unlock()
		if d := c.droplets[ip.droplet]; d != nil && d.Status == "active" {
			return d.Address
		}
		return netip.Addr{}
	})
	if err != nil {
		c.t.Errorf("dolab: the proxy of reserved IP %s: %v", addr, err)
		return apiError(http.StatusInternalServerError, "server_error", err.Error())
	}
	c.ips[addr] = ip
	return answer{http.StatusAccepted, map[string]any{"reserved_ip": c.reservedIPJSON(ip), "links": map[string]any{}}}
}

// CreateReservedIP makes an unassigned reserved IP in the fake's region, as POST
// /v2/reserved_ips would, for tests that set up an account.
func (c *Cloud) CreateReservedIP() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.createReservedIP([]byte(`{"region":"` + c.opts.Region + `"}`))
	if a.status != http.StatusAccepted {
		c.t.Fatalf("dolab: creating a reserved IP: %v", a.body)
	}
	return a.body.(map[string]any)["reserved_ip"].(map[string]any)["ip"].(netip.Addr)
}

func (c *Cloud) reservedIPAction(ip *reservedIP, body []byte) answer {
	var in struct {
		Type      string `json:"type"`
		DropletID int    `json:"droplet_id"`
	}
	if err := decode(body, &in); err != nil {
		return c.bad("reserved IP action body: %v", err)
	}
	var a *action
	switch in.Type {
	case "assign":
		if c.droplets[in.DropletID] == nil {
			return unprocessable("Droplet %d could not be found.", in.DropletID)
		}
		ip.droplet = in.DropletID
		a = c.newAction("assign_ip", "reserved_ip", ipID(ip.ip))
	case "unassign":
		if ip.droplet == 0 {
			return unprocessable("The reserved IP is not assigned to a droplet.")
		}
		ip.droplet = 0
		a = c.newAction("unassign_ip", "reserved_ip", ipID(ip.ip))
	default:
		return unprocessable("Action type %q is not one of assign, unassign.", in.Type)
	}
	a.done = true
	ip.pending = a
	return answer{http.StatusCreated, map[string]any{"action": c.actionJSON(a)}}
}

// ipID is how the API names an IPv4 address as an action's resource_id: the address as a number.
func ipID(a netip.Addr) int {
	b := a.As4()
	return int(binary.BigEndian.Uint32(b[:]))
}

func (c *Cloud) reservedIPJSON(ip *reservedIP) map[string]any {
	var d any
	if dr := c.droplets[ip.droplet]; dr != nil {
		d = c.dropletJSON(dr)
	}
	locked := ip.pending != nil && ip.pending.completed.IsZero()
	return map[string]any{"ip": ip.ip, "droplet": d, "locked": locked, "project_id": "",
		"region": map[string]any{"slug": c.opts.Region, "name": c.opts.Region, "available": true}}
}
