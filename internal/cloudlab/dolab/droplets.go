package dolab

// Droplets and their actions, as the API reference documents them: POST /v2/droplets (202, the
// droplet "new" and links.actions with the create action), GET /v2/droplets (tag_name filters,
// paginated), GET and DELETE /v2/droplets/{id} (204), POST /v2/droplets/{id}/actions with
// {"type": "power_off"} or {"type": "power_on"} (201, the action), GET
// /v2/droplets/{id}/actions/{action_id}. A droplet's status is new, active or off; one whose boot
// failed is "archive" (the fake's stand-in for DigitalOcean deleting a droplet that failed to
// create), and its create action "errored".

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Droplet is what the fake knows of one droplet, for tests.
type Droplet struct {
	ID       int
	Name     string
	Status   string
	Image    int
	Size     string
	VPCUUID  string
	Tags     []string
	UserData string
	Address  netip.Addr // public address: a loopback address of Options.AddressRange
	Guest    netip.Addr // the address its metadata gives it, as the guest sees it
}

type droplet struct {
	Droplet
	created time.Time
	polls   int     // GETs seen while new, without a Hypervisor
	machine Machine // the running VM, with a Hypervisor
	boots   int     // incremented by every power on, so a late boot of an earlier one stops itself
}

// Droplets returns the droplets that exist, by ID.
func (c *Cloud) Droplets() []Droplet {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Droplet
	for _, id := range sortedIDs(c.droplets) {
		d := c.droplets[id].Droplet
		d.Tags = slices.Clone(d.Tags)
		out = append(out, d)
	}
	return out
}

// BreakCreates makes the next n droplet creates fail after the API accepted them, as a create
// that fails on DigitalOcean's side does: the droplet is "archive" and its create action
// "errored".
func (c *Cloud) BreakCreates(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.breakCreates = n
}

// hostname is what the API accepts as a droplet name.
var hostname = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$`)

type createDroplet struct {
	Name     string          `json:"name"`
	Region   string          `json:"region"`
	Size     string          `json:"size"`
	Image    json.RawMessage `json:"image"`
	Tags     []string        `json:"tags"`
	UserData string          `json:"user_data"`
	VPCUUID  string          `json:"vpc_uuid"`
	// Accepted and ignored: what godo always sends.
	SSHKeys           []json.RawMessage `json:"ssh_keys"`
	Backups           bool              `json:"backups"`
	IPv6              bool              `json:"ipv6"`
	PrivateNetworking bool              `json:"private_networking"`
	Monitoring        bool              `json:"monitoring"`
}

func (c *Cloud) routeDroplets(r *http.Request, parts []string, body []byte) answer {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		return c.listDroplets(r)
	case len(parts) == 0 && r.Method == http.MethodPost:
		return c.createDroplet(body)
	}
	id, err := strconv.Atoi(parts[0])
	if err != nil {
		return notFound()
	}
	d := c.droplets[id]
	if d == nil {
		return notFound()
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		c.pollDroplet(d)
		return answer{http.StatusOK, map[string]any{"droplet": c.dropletJSON(d)}}
	case len(parts) == 1 && r.Method == http.MethodDelete:
		c.deleteDroplet(d)
		return answer{http.StatusNoContent, nil}
	case len(parts) == 2 && parts[1] == "actions" && r.Method == http.MethodPost:
		return c.dropletAction(d, body)
	case len(parts) == 3 && parts[1] == "actions" && r.Method == http.MethodGet:
		aid, err := strconv.Atoi(parts[2])
		if a := c.actions[aid]; err != nil || a == nil || a.resourceID != d.ID {
			return notFound()
		}
		return c.getAction(aid)
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

func (c *Cloud) listDroplets(r *http.Request) answer {
	tag := r.URL.Query().Get("tag_name")
	var out []map[string]any
	for _, id := range sortedIDs(c.droplets) {
		d := c.droplets[id]
		if tag != "" && !slices.Contains(d.Tags, tag) {
			continue
		}
		c.pollDroplet(d)
		out = append(out, c.dropletJSON(d))
	}
	return page(c, r, "droplets", out)
}

// pollDroplet counts a GET of a new droplet without a Hypervisor, which is active after NewPolls.
func (c *Cloud) pollDroplet(d *droplet) {
	if c.opts.Hypervisor != nil || d.Status != "new" {
		return
	}
	if d.polls >= c.opts.NewPolls {
		d.Status = "active"
		return
	}
	d.polls++
}

func (c *Cloud) createDroplet(body []byte) answer {
	var in createDroplet
	if err := decode(body, &in); err != nil {
		return c.bad("droplet create body: %v", err)
	}
	if !hostname.MatchString(in.Name) {
		return unprocessable("Name is invalid: %q is not a valid hostname", in.Name)
	}
	if in.Region != c.opts.Region {
		return unprocessable("Region %q is not available (the fake serves %s)", in.Region, c.opts.Region)
	}
	if in.Size == "" {
		return unprocessable("You specified an invalid size for Droplet creation.")
	}
	var imageID int
	if err := json.Unmarshal(in.Image, &imageID); err != nil {
		return unprocessable("You specified an invalid image for Droplet creation: the fake has custom images by id only, got %s", in.Image)
	}
	img := c.images[imageID]
	if img == nil || img.status != "available" {
		return unprocessable("You specified an invalid image for Droplet creation.")
	}
	if !slices.Contains(img.regions, in.Region) {
		return unprocessable("Image %d is not available in region %s.", imageID, in.Region)
	}
	for _, t := range in.Tags {
		if !validTag(t) {
			return unprocessable("Tag %q is invalid: tags may contain letters, numbers, colons, dashes and underscores, up to 255 characters.", t)
		}
	}
	if len(in.UserData) > 64<<10 {
		return unprocessable("User data is larger than 64 KiB.")
	}
	addr, err := c.allocAddress()
	if err != nil {
		return apiError(http.StatusUnprocessableEntity, "unprocessable_entity", err.Error())
	}
	c.nextNIC++
	d := &droplet{Droplet: Droplet{ID: c.newID(), Name: in.Name, Status: "new", Image: imageID, Size: in.Size,
		VPCUUID: in.VPCUUID, Tags: slices.Compact(slices.Clone(in.Tags)), UserData: in.UserData, Address: addr,
		Guest: netip.AddrFrom4([4]byte{169, 254, 20 + byte(c.nextNIC>>8), byte(c.nextNIC)})}, created: time.Now()}
	for _, t := range d.Tags {
		c.tags[t] = true
	}
	c.droplets[d.ID] = d
	a := c.newAction("create", "droplet", d.ID)
	if c.breakCreates > 0 {
		c.breakCreates--
		d.Status = "archive"
		a.finish(true)
	} else if c.opts.Hypervisor != nil {
		c.boot(d, a, img.disk)
	} else {
		a.done = true
	}
	return answer{http.StatusAccepted, map[string]any{"droplet": c.dropletJSON(d),
		"links": map[string]any{"actions": []map[string]any{{"id": a.id, "rel": "create", "href": c.srv.URL + "/v2/actions/" + strconv.Itoa(a.id)}}}}}
}

func (c *Cloud) deleteDroplet(d *droplet) {
	delete(c.droplets, d.ID)
	d.boots++
	for _, ip := range c.ips {
		if ip.droplet == d.ID {
			ip.droplet = 0
		}
	}
	for _, v := range c.volumes { // DigitalOcean detaches a destroyed droplet's volumes
		if v.droplet == d.ID {
			v.droplet = 0
		}
	}
	if m := d.machine; m != nil {
		d.machine = nil
		c.stopMachine(d.ID, m)
	}
}

type actionRequest struct {
	Type string `json:"type"`
}

func (c *Cloud) dropletAction(d *droplet, body []byte) answer {
	var in actionRequest
	if err := decode(body, &in); err != nil {
		return c.bad("droplet action body: %v", err)
	}
	switch in.Type {
	case "power_off":
		if d.Status == "off" {
			return unprocessable("Droplet is already powered off.")
		}
		if d.Status != "active" {
			return unprocessable("Droplet is currently %s; try again once it is active.", d.Status)
		}
		d.Status = "off"
		d.boots++
		a := c.newAction("power_off", "droplet", d.ID)
		a.done = true
		if m := d.machine; m != nil {
			d.machine = nil
			a.done = false
			c.stopMachine(d.ID, m, a)
		}
		return answer{http.StatusCreated, map[string]any{"action": c.actionJSON(a)}}
	case "power_on":
		if d.Status == "active" {
			return unprocessable("Droplet is already powered on.")
		}
		if d.Status != "off" {
			return unprocessable("Droplet is currently %s; try again once it is off.", d.Status)
		}
		a := c.newAction("power_on", "droplet", d.ID)
		if c.opts.Hypervisor != nil {
			d.Status = "new" // until booted; DigitalOcean shows off, then active
			c.boot(d, a, "")
		} else {
			d.Status, a.done = "active", true
		}
		return answer{http.StatusCreated, map[string]any{"action": c.actionJSON(a)}}
	}
	return unprocessable("Action type %q is not supported by the fake (power_off, power_on).", in.Type)
}

func (c *Cloud) dropletJSON(d *droplet) map[string]any {
	img := map[string]any{"id": d.Image}
	if i := c.images[d.Image]; i != nil {
		img = c.imageJSON(i)
	}
	return map[string]any{
		"id": d.ID, "name": d.Name, "memory": 1024, "vcpus": 1, "disk": 25, "locked": false, "status": d.Status,
		"created_at": apiTime(d.created), "features": []string{}, "backup_ids": []int{}, "snapshot_ids": []int{},
		"image": img, "volume_ids": []string{}, "size_slug": d.Size, "tags": d.Tags, "vpc_uuid": d.VPCUUID,
		"region": map[string]any{"slug": c.opts.Region, "name": c.opts.Region, "available": true},
		"networks": map[string]any{"v4": []map[string]any{{"ip_address": d.Address.String(), "netmask": "255.255.255.0",
			"gateway": c.opts.AddressRange.Masked().Addr().Next().String(), "type": "public"}}, "v6": []any{}},
	}
}

// Tags: POST /v2/tags (201, also for a tag that exists), GET and DELETE /v2/tags/{name}.

var tagName = regexp.MustCompile(`^[a-zA-Z0-9_:-]{1,255}$`)

func validTag(t string) bool { return tagName.MatchString(t) }

// Tags returns the tags that exist.
func (c *Cloud) Tags() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for t := range c.tags {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (c *Cloud) routeTags(r *http.Request, parts []string, body []byte) answer {
	switch {
	case len(parts) == 0 && r.Method == http.MethodPost:
		var in struct {
			Name string `json:"name"`
		}
		if err := decode(body, &in); err != nil {
			return c.bad("tag create body: %v", err)
		}
		if !validTag(in.Name) {
			return unprocessable("Tag %q is invalid: tags may contain letters, numbers, colons, dashes and underscores, up to 255 characters.", in.Name)
		}
		c.tags[in.Name] = true
		return answer{http.StatusCreated, map[string]any{"tag": c.tagJSON(in.Name)}}
	case len(parts) == 1 && r.Method == http.MethodGet:
		if !c.tags[parts[0]] {
			return notFound()
		}
		return answer{http.StatusOK, map[string]any{"tag": c.tagJSON(parts[0])}}
	case len(parts) == 1 && r.Method == http.MethodDelete:
		if !c.tags[parts[0]] {
			return notFound()
		}
		delete(c.tags, parts[0])
		for _, d := range c.droplets {
			d.Tags = slices.DeleteFunc(d.Tags, func(t string) bool { return t == parts[0] })
		}
		for _, i := range c.images {
			i.tags = slices.DeleteFunc(i.tags, func(t string) bool { return t == parts[0] })
		}
		return answer{http.StatusNoContent, nil}
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

func (c *Cloud) tagJSON(name string) map[string]any {
	n := 0
	for _, d := range c.droplets {
		if slices.Contains(d.Tags, name) {
			n++
		}
	}
	return map[string]any{"name": name, "resources": map[string]any{"count": n, "droplets": map[string]any{"count": n}}}
}

func sortedIDs[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
