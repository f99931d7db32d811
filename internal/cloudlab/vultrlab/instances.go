package vultrlab

import (
	"encoding/base64"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Instance is what the fake knows of one instance, for tests.
type Instance struct {
	ID, Label, Region, Plan, SnapshotID, VPC string
	Tags                                     []string
	UserData                                 []byte
	MainIP                                   netip.Addr // its loopback address
	VPCAddress                               netip.Addr // its address in VPC, when attached to one
	Status, PowerStatus                      string     // "pending"/"active"; "running"/"stopped"
	Created                                  time.Time
}

type instance struct {
	Instance
	pendingReads int  // reads left that see it pending
	booting      bool // the Hypervisor is booting it: pending until Boot returns
	uefi         bool
	machine      Machine
	dir          string // its directory (disk, console), once the Hypervisor made it
}

// Instances returns the instances the fake holds, oldest first.
func (c *Cloud) Instances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Instance
	for _, in := range c.sortedInstances() {
		cp := in.Instance
		cp.Tags = slices.Clone(in.Tags)
		cp.UserData = slices.Clone(in.UserData)
		out = append(out, cp)
	}
	return out
}

// sortedInstances is every instance, oldest first (ties by ID); c.mu is held.
func (c *Cloud) sortedInstances() []*instance {
	out := make([]*instance, 0, len(c.instances))
	for _, in := range c.instances {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// instanceJSON is govultr's Instance, as the API answers it.
type instanceJSON struct {
	ID          string   `json:"id"`
	Os          string   `json:"os"`
	RAM         int      `json:"ram"`
	Disk        int      `json:"disk"`
	Plan        string   `json:"plan"`
	MainIP      string   `json:"main_ip"`
	VCPUCount   int      `json:"vcpu_count"`
	Region      string   `json:"region"`
	DateCreated string   `json:"date_created"`
	Status      string   `json:"status"`
	PowerStatus string   `json:"power_status"`
	ServerState string   `json:"server_status"`
	NetmaskV4   string   `json:"netmask_v4"`
	GatewayV4   string   `json:"gateway_v4"`
	Label       string   `json:"label"`
	Hostname    string   `json:"hostname"`
	InternalIP  string   `json:"internal_ip"`
	VPCOnly     bool     `json:"vpc_only"`
	SnapshotID  string   `json:"snapshot_id"`
	Tags        []string `json:"tags"`
	Features    []string `json:"features"`
}

// read is one read of in (GET or a list holding it): a pending instance becomes active after
// Options.PendingPolls of them. c.mu is held.
func (in *instance) read() instanceJSON {
	if in.Status == "pending" && !in.booting {
		if in.pendingReads > 0 {
			in.pendingReads--
		} else {
			in.Status = "active"
		}
	}
	j := instanceJSON{
		ID: in.ID, Os: "Snapshot", RAM: 1024, Disk: 25, Plan: in.Plan, VCPUCount: 1, Region: in.Region,
		DateCreated: vultrTime(in.Created), Status: in.Status, PowerStatus: in.PowerStatus,
		Label: in.Label, Hostname: in.Label, SnapshotID: in.SnapshotID, Tags: slices.Clone(in.Tags),
		MainIP: "0.0.0.0", NetmaskV4: "", GatewayV4: "0.0.0.0", ServerState: "none", Features: []string{},
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if in.VPCAddress.IsValid() {
		j.InternalIP = in.VPCAddress.String()
	}
	if in.Status == "active" {
		j.MainIP, j.NetmaskV4, j.GatewayV4 = in.MainIP.String(), "255.255.255.0", "127.0.0.1"
		j.ServerState = "ok"
		if in.PowerStatus == "stopped" {
			j.ServerState = "none"
		}
	}
	return j
}

type createInstanceReq struct {
	Region     string   `json:"region"`
	Plan       string   `json:"plan"`
	Label      string   `json:"label"`
	Hostname   string   `json:"hostname"`
	Tags       []string `json:"tags"`
	SnapshotID string   `json:"snapshot_id"`
	OsID       int      `json:"os_id"`
	UserData   string   `json:"user_data"`
	AttachVPC  []string `json:"attach_vpc"`
}

func (c *Cloud) createInstance(r *http.Request) (int, any) {
	var req createInstanceReq
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	switch {
	case req.Region == "":
		return errorf(http.StatusBadRequest, "Invalid region.")
	case req.Region != c.opts.Region:
		return errorf(http.StatusBadRequest, "Invalid region %q: this account's fake has only %q.", req.Region, c.opts.Region)
	case req.Plan == "":
		return errorf(http.StatusBadRequest, "Invalid plan.")
	case req.SnapshotID == "" && req.OsID == 0:
		return errorf(http.StatusBadRequest, "Missing os_id, iso_id, app_id, image_id or snapshot_id.")
	}
	data, err := base64.StdEncoding.DecodeString(req.UserData)
	if err != nil {
		return errorf(http.StatusBadRequest, "Invalid user_data: not base64 (%v).", err)
	}
	if len(req.AttachVPC) > 1 {
		return errorf(http.StatusBadRequest, "The fake attaches one VPC at most, got %d.", len(req.AttachVPC))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := r.Context().Err(); err != nil { // the client gave up before the fake took it: see serve
		return errorf(http.StatusServiceUnavailable, "client closed the request")
	}
	if len(c.refuse) > 0 {
		reason := c.refuse[0]
		c.refuse = c.refuse[1:]
		return errorf(http.StatusBadRequest, "Unable to create server: %s", reason)
	}
	var snap *snapshot
	if req.SnapshotID != "" {
		s, ok := c.snapshots[req.SnapshotID]
		if !ok || s.Status != "complete" {
			return errorf(http.StatusBadRequest, "Invalid snapshot_id %q.", req.SnapshotID)
		}
		snap = s
	}
	var disk *os.File // opened now: the snapshot may be deleted before the boot copies it
	if c.opts.Hypervisor != nil {
		if snap == nil {
			return errorf(http.StatusBadRequest, "The fake boots snapshots only: give snapshot_id.")
		}
		f, err := os.Open(snap.Path)
		if err != nil {
			return errorf(http.StatusInternalServerError, "vultrlab: snapshot %s: %v", snap.ID, err)
		}
		disk = f
	}
	addr, err := c.allocAddress()
	if err != nil {
		return errorf(http.StatusBadRequest, "Unable to create server: %v", err)
	}
	in := &instance{Instance: Instance{
		ID: newID(), Label: req.Label, Region: req.Region, Plan: req.Plan, SnapshotID: req.SnapshotID,
		Tags: slices.Clone(req.Tags), UserData: data, MainIP: addr, Status: "pending", PowerStatus: "running",
		Created: time.Now().Truncate(time.Second),
	}, pendingReads: c.opts.PendingPolls}
	if len(req.AttachVPC) == 1 {
		in.VPC = req.AttachVPC[0]
		n := len(c.instances) + 3
		in.VPCAddress = netip.AddrFrom4([4]byte{10, 1, byte(n >> 8), byte(n)})
	}
	if disk != nil {
		in.booting, in.pendingReads, in.uefi = true, 0, snap.UEFI
		c.wg.Add(1)
		go c.boot(in.ID, disk)
	}
	c.instances[in.ID] = in
	j := in.read()
	in.pendingReads++ // the create answer is not a read
	j.Status, j.MainIP = "pending", "0.0.0.0"
	return http.StatusAccepted, map[string]any{"instance": j}
}

func (c *Cloud) listInstances(r *http.Request) (int, any) {
	q := r.URL.Query()
	c.mu.Lock()
	defer c.mu.Unlock()
	var match []*instance
	for _, in := range c.sortedInstances() {
		if (q.Get("tag") == "" || slices.Contains(in.Tags, q.Get("tag"))) &&
			(q.Get("label") == "" || in.Label == q.Get("label")) &&
			(q.Get("region") == "" || in.Region == q.Get("region")) &&
			(q.Get("main_ip") == "" || in.Status == "active" && in.MainIP.String() == q.Get("main_ip")) {
			match = append(match, in)
		}
	}
	from, to, m, ok := page(r, len(match))
	if !ok {
		return errorf(http.StatusBadRequest, "Invalid per_page or cursor.")
	}
	out := []instanceJSON{}
	for _, in := range match[from:to] {
		out = append(out, in.read())
	}
	return http.StatusOK, map[string]any{"instances": out, "meta": m}
}

// lookup finds the instance of the route's id; c.mu is held.
func (c *Cloud) lookup(r *http.Request) (*instance, int, any) {
	in, ok := c.instances[r.PathValue("id")]
	if !ok {
		s, b := errorf(http.StatusNotFound, "Invalid instance-id.")
		return nil, s, b
	}
	return in, 0, nil
}

func (c *Cloud) getInstance(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, s, b := c.lookup(r)
	if in == nil {
		return s, b
	}
	return http.StatusOK, map[string]any{"instance": in.read()}
}

func (c *Cloud) deleteInstance(r *http.Request) (int, any) {
	c.mu.Lock()
	in, s, b := c.lookup(r)
	if in == nil {
		c.mu.Unlock()
		return s, b
	}
	delete(c.instances, in.ID)
	for _, rip := range c.rips { // Vultr detaches a reserved IP from an instance it destroys
		if rip.instanceID == in.ID {
			rip.setTarget("", netip.Addr{})
		}
	}
	c.detachBlocksOf(in.ID) // and its block storage
	m, dir := in.machine, in.dir
	in.machine = nil
	c.mu.Unlock()
	if m != nil {
		if err := m.Stop(); err != nil {
			return errorf(http.StatusInternalServerError, "vultrlab: stopping the machine of %s: %v", in.ID, err)
		}
		c.keepConsole(in.ID, m)
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	return http.StatusNoContent, nil
}

func (c *Cloud) haltInstance(r *http.Request) (int, any) {
	c.mu.Lock()
	in, s, b := c.lookup(r)
	if in == nil {
		c.mu.Unlock()
		return s, b
	}
	in.PowerStatus = "stopped"
	m := in.machine
	in.machine = nil
	c.mu.Unlock()
	if m != nil {
		if err := m.Stop(); err != nil {
			return errorf(http.StatusInternalServerError, "vultrlab: stopping the machine of %s: %v", in.ID, err)
		}
		c.keepConsole(in.ID, m)
	}
	return http.StatusNoContent, nil
}

func (c *Cloud) startInstance(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, s, b := c.lookup(r)
	if in == nil {
		return s, b
	}
	if in.PowerStatus == "stopped" && c.opts.Hypervisor != nil && in.dir != "" && !in.booting {
		in.booting = true
		c.wg.Add(1)
		go c.boot(in.ID, nil)
	}
	in.PowerStatus = "running"
	return http.StatusNoContent, nil
}

// boot boots instance id with the Hypervisor: first (snap not nil) copying its disk from the
// snapshot, later (a start after a halt) from the disk it has.
func (c *Cloud) boot(id string, snap *os.File) {
	defer c.wg.Done()
	var dir, disk string
	var err error
	if snap != nil {
		dir, disk, err = c.instanceDisk(id, snap)
		snap.Close()
	} else {
		c.mu.Lock()
		if in, ok := c.instances[id]; ok {
			dir = in.dir
		}
		c.mu.Unlock()
		disk = filepath.Join(dir, "disk.raw")
	}
	c.mu.Lock()
	in, ok := c.instances[id]
	if !ok {
		c.mu.Unlock()
		return
	}
	in.dir = dir
	spec := MachineSpec{InstanceID: id, Disk: disk, BootMode: "legacy-bios", Address: in.MainIP, Ports: c.opts.Ports,
		Metadata: c.Metadata(id), Routes: c.opts.Routes, Dir: dir}
	if in.uefi {
		spec.BootMode = "uefi"
	}
	c.mu.Unlock()
	var m Machine
	if err == nil {
		m, err = c.opts.Hypervisor.Boot(c.ctx, spec)
	}
	c.mu.Lock()
	in, ok = c.instances[id]
	stale := !ok || in.PowerStatus == "stopped" // deleted or halted while booting
	if ok {
		in.booting = false
		if err != nil {
			in.PowerStatus = "stopped"
			if c.bootErrors == nil {
				c.bootErrors = map[string]string{}
			}
			c.bootErrors[id] = err.Error()
		} else if !stale {
			in.machine = m
			c.plugBlocksOf(in)
		}
	}
	c.mu.Unlock()
	if err == nil && stale {
		_ = m.Stop()
	}
}

// BootErrors returns why each instance whose last boot failed did, by ID.
func (c *Cloud) BootErrors() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.bootErrors)
}

// Console is the serial console of instance id's machine so far, or as it was when the machine
// last stopped (the instance halted or destroyed); nil when it never had one.
func (c *Cloud) Console(id string) []byte {
	c.mu.Lock()
	in, ok := c.instances[id]
	var m Machine
	if ok {
		m = in.machine
	}
	last := c.lastConsole[id]
	c.mu.Unlock()
	if m == nil {
		return last
	}
	b, _ := m.Console()
	return b
}

// keepConsole records the console of id's machine m, just stopped, for Console and Consoles.
func (c *Cloud) keepConsole(id string, m Machine) {
	b, _ := m.Console()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastConsole == nil {
		c.lastConsole = map[string][]byte{}
	}
	c.lastConsole[id] = b
}

// Consoles returns the serial console of every instance that has had a machine, destroyed ones
// included (as it was when their machine stopped), by instance ID: what a test prints when a
// rollout failed and drover destroyed the instance that would have told why.
func (c *Cloud) Consoles() map[string][]byte {
	c.mu.Lock()
	ids := slices.Collect(maps.Keys(c.lastConsole))
	for id, in := range c.instances {
		if in.machine != nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	out := map[string][]byte{}
	for _, id := range ids {
		if b := c.Console(id); b != nil {
			out[id] = b
		}
	}
	return out
}

// Activate ends the pending time of instance id, as if its boot had finished.
func (c *Cloud) Activate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in, ok := c.instances[id]; ok {
		in.pendingReads = 0
	}
}
