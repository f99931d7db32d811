package vultrlab

// Reserved IPs: create, get, list, attach, detach, delete. As on Vultr, attaching an address
// that is attached (to another instance or the same) is refused until it is detached, which is
// why a move is detach-then-attach and has a gap; an instance destroyed loses its reserved IPs.
// The address is a loopback address on which the fake listens on Options.Ports and forwards
// each new connection to the holder's main IP at that moment; with no holder, or a holder halted,
// a connection is closed at once. Connections already open stay with the old holder.

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"sort"
	"sync"

	"github.com/drover-dev/drover/internal/cloudlab/addrproxy"
)

// ReservedIP is what the fake knows of one reserved IP, for tests.
type ReservedIP struct {
	ID, Label, Region, InstanceID string
	IP                            netip.Addr
}

type reservedIP struct {
	id, label, region, instanceID string
	ip                            netip.Addr
	proxy                         *addrproxy.Proxy

	targetMu sync.Mutex
	target   netip.Addr  // where new connections go; invalid: closed at once
	running  func() bool // whether the target is powered on; reads c.mu, so called without it
}

// ReservedIPs returns the reserved IPs the fake holds, by ID.
func (c *Cloud) ReservedIPs() []ReservedIP {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ReservedIP
	for _, r := range c.sortedRIPs() {
		out = append(out, ReservedIP{r.id, r.label, r.region, r.instanceID, r.ip})
	}
	return out
}

func (c *Cloud) sortedRIPs() []*reservedIP {
	out := make([]*reservedIP, 0, len(c.rips))
	for _, r := range c.rips {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ip.Less(out[j].ip) })
	return out
}

type ripJSON struct {
	ID         string `json:"id"`
	Region     string `json:"region"`
	IPType     string `json:"ip_type"`
	Subnet     string `json:"subnet"`
	SubnetSize int    `json:"subnet_size"`
	Label      string `json:"label"`
	InstanceID string `json:"instance_id"`
}

func (r *reservedIP) json() ripJSON {
	return ripJSON{r.id, r.region, "v4", r.ip.String(), 32, r.label, r.instanceID}
}

func (c *Cloud) createReservedIP(r *http.Request) (int, any) {
	var req struct {
		Region string `json:"region"`
		IPType string `json:"ip_type"`
		Label  string `json:"label"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	if req.Region != c.opts.Region {
		return errorf(http.StatusBadRequest, "Invalid region %q: this account's fake has only %q.", req.Region, c.opts.Region)
	}
	if req.IPType != "v4" {
		return errorf(http.StatusBadRequest, "Invalid ip_type %q: the fake has v4 only.", req.IPType)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ip, err := c.allocAddress()
	if err != nil {
		return errorf(http.StatusBadRequest, "Unable to reserve an IP: %v", err)
	}
	rip := &reservedIP{id: newID(), label: req.Label, region: req.Region, ip: ip}
	if rip.proxy, err = addrproxy.Listen(ip, c.opts.Ports, rip.holder); err != nil {
		return errorf(http.StatusInternalServerError, "vultrlab: the proxy of %s: %v", ip, err)
	}
	c.rips[rip.id] = rip
	return http.StatusCreated, map[string]any{"reserved_ip": rip.json()}
}

func (c *Cloud) listReservedIPs(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.sortedRIPs()
	from, to, m, ok := page(r, len(all))
	if !ok {
		return errorf(http.StatusBadRequest, "Invalid per_page or cursor.")
	}
	out := []ripJSON{}
	for _, rip := range all[from:to] {
		out = append(out, rip.json())
	}
	return http.StatusOK, map[string]any{"reserved_ips": out, "meta": m}
}

func (c *Cloud) lookupRIP(r *http.Request) (*reservedIP, int, any) {
	rip, ok := c.rips[r.PathValue("id")]
	if !ok {
		s, b := errorf(http.StatusNotFound, "Reserved IP not found.")
		return nil, s, b
	}
	return rip, 0, nil
}

func (c *Cloud) getReservedIP(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rip, s, b := c.lookupRIP(r)
	if rip == nil {
		return s, b
	}
	return http.StatusOK, map[string]any{"reserved_ip": rip.json()}
}

func (c *Cloud) deleteReservedIP(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rip, s, b := c.lookupRIP(r)
	if rip == nil {
		return s, b
	}
	delete(c.rips, rip.id)
	rip.proxy.Close()
	return http.StatusNoContent, nil
}

func (c *Cloud) attachReservedIP(r *http.Request) (int, any) {
	var req struct {
		InstanceID string `json:"instance_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "Invalid JSON body: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rip, s, b := c.lookupRIP(r)
	if rip == nil {
		return s, b
	}
	in, ok := c.instances[req.InstanceID]
	switch {
	case !ok:
		return errorf(http.StatusNotFound, "Invalid instance_id %q.", req.InstanceID)
	case in.Region != rip.region:
		return errorf(http.StatusBadRequest, "Reserved IP is in %s, instance %s in %s.", rip.region, in.ID, in.Region)
	case rip.instanceID != "":
		return errorf(http.StatusBadRequest, "Reserved IP is already attached to instance %s: detach it first.", rip.instanceID)
	}
	rip.setTarget(in.ID, in.MainIP)
	rip.targetMu.Lock()
	rip.running = func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		cur, ok := c.instances[in.ID]
		return ok && cur.PowerStatus == "running"
	}
	rip.targetMu.Unlock()
	return http.StatusNoContent, nil
}

func (c *Cloud) detachReservedIP(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rip, s, b := c.lookupRIP(r)
	if rip == nil {
		return s, b
	}
	if rip.instanceID == "" {
		return errorf(http.StatusBadRequest, "Reserved IP is not attached.")
	}
	rip.setTarget("", netip.Addr{})
	return http.StatusNoContent, nil
}

// setTarget points new connections at addr (invalid: none) and records the holder; c.mu is held.
func (r *reservedIP) setTarget(id string, addr netip.Addr) {
	r.instanceID = id
	r.targetMu.Lock()
	r.target = addr
	r.targetMu.Unlock()
}

// holder is where a new connection to the address goes: the attached instance while it runs,
// else nowhere (the connection is closed, as Vultr's network drops it).
func (r *reservedIP) holder() netip.Addr {
	r.targetMu.Lock()
	target, running := r.target, r.running
	r.targetMu.Unlock()
	if !target.IsValid() || running == nil || !running() {
		return netip.Addr{}
	}
	return target
}
