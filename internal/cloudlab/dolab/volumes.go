package dolab

// Block storage volumes and their snapshots, as the API reference documents them: POST
// /v2/volumes with {size_gigabytes, name, region, description, tags, snapshot_id} (201; a name
// already used in the region is 409 "conflict"), GET /v2/volumes (name and region filter,
// paginated), GET and DELETE /v2/volumes/{id} (an attached volume is refused with 409), POST
// /v2/volumes/{id}/actions with {"type": "attach" | "detach", "droplet_id"} (202 and the action; a
// volume attached to a droplet, attached to another is refused with 422), GET
// /v2/volumes/{id}/actions/{action_id}, POST and GET /v2/volumes/{id}/snapshots, GET
// /v2/snapshots?resource_type=volume, GET and DELETE /v2/snapshots/{id}. With a Hypervisor a
// volume is a raw file hot-plugged into the droplet's running machine (volumeplug.go); without,
// API state and the bytes tests write (WriteVolume, ReadVolume). Left out: resize, formatting (filesystem_type is kept, not applied), volumes attached to
// several droplets (DigitalOcean allows one).

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/rawfile"
)

type volume struct {
	id, name, description, fsType string
	size                          int
	droplet                       int // 0: attached nowhere
	tags                          []string
	created                       time.Time
	data                          []byte // what tests wrote at the volume's start, without a file
	path                          string // its raw file, with a Hypervisor (volumeplug.go)
	plugging                      bool   // a hot-plug runs
}

type volumeSnapshot struct {
	id, name, volumeID string
	size               int
	tags               []string
	created            time.Time
	data               []byte
	path               string // a copy of the volume's file, when it had one
}

var volumeName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// WriteVolume writes data at the start of volume id, as a guest would.
func (c *Cloud) WriteVolume(id string, data []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil {
		return false
	}
	if v.path != "" {
		return writeAt(v.path, data) == nil
	}
	if len(v.data) < len(data) {
		v.data = append(v.data, make([]byte, len(data)-len(v.data))...)
	}
	copy(v.data, data)
	return true
}

// ReadVolume reads n bytes from the start of volume id (zeros where nothing was written).
func (c *Cloud) ReadVolume(id string, n int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil {
		return nil, false
	}
	out := make([]byte, n)
	if v.path != "" {
		return out, readAt(v.path, out) == nil
	}
	copy(out, v.data)
	return out, true
}

func (c *Cloud) routeVolumes(r *http.Request, parts []string, body []byte) answer {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		q := r.URL.Query()
		var out []map[string]any
		for _, id := range slices.Sorted(maps.Keys(c.volumes)) {
			v := c.volumes[id]
			if n := q.Get("name"); n != "" && n != v.name || q.Get("region") != "" && q.Get("region") != c.opts.Region {
				continue
			}
			out = append(out, c.volumeJSON(v))
		}
		return page(c, r, "volumes", out)
	case len(parts) == 0 && r.Method == http.MethodPost:
		return c.createVolume(body)
	}
	v := c.volumes[parts[0]]
	if v == nil {
		return notFound()
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		return answer{http.StatusOK, map[string]any{"volume": c.volumeJSON(v)}}
	case len(parts) == 1 && r.Method == http.MethodDelete:
		if v.droplet != 0 {
			return apiError(http.StatusConflict, "conflict", "Volume is attached to a droplet; detach it first.")
		}
		delete(c.volumes, v.id)
		if v.path != "" {
			os.Remove(v.path)
		}
		return answer{http.StatusNoContent, nil}
	case len(parts) == 2 && parts[1] == "actions" && r.Method == http.MethodPost:
		return c.volumeAction(v, body)
	case len(parts) == 3 && parts[1] == "actions" && r.Method == http.MethodGet:
		id, err := strconv.Atoi(parts[2])
		if a := c.actions[id]; err != nil || a == nil || a.resourceType != "volume" {
			return notFound()
		}
		return c.getAction(id)
	case len(parts) == 2 && parts[1] == "snapshots" && r.Method == http.MethodPost:
		var in struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := decode(body, &in); err != nil {
			return c.bad("snapshot body: %v", err)
		}
		if in.Name == "" {
			return unprocessable("Name is required.")
		}
		for _, t := range in.Tags {
			if !validTag(t) {
				return unprocessable("Tag %q is invalid.", t)
			}
		}
		s := &volumeSnapshot{id: uuid(), name: in.Name, volumeID: v.id, size: v.size, tags: slices.Clone(in.Tags), created: time.Now(), data: slices.Clone(v.data)}
		if v.path != "" {
			// A snapshot of an attached volume is crash-consistent, as DigitalOcean's is.
			s.path = filepath.Join(c.opts.Dir, "volumes", "snapshot-"+s.id+".raw")
			if err := rawfile.Copy(s.path, v.path); err != nil {
				return c.bad("%v", err)
			}
		}
		c.snapshots[s.id] = s
		return answer{http.StatusCreated, map[string]any{"snapshot": c.snapshotJSON(s)}}
	case len(parts) == 2 && parts[1] == "snapshots" && r.Method == http.MethodGet:
		var out []map[string]any
		for _, id := range slices.Sorted(maps.Keys(c.snapshots)) {
			if s := c.snapshots[id]; s.volumeID == v.id {
				out = append(out, c.snapshotJSON(s))
			}
		}
		return page(c, r, "snapshots", out)
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

func (c *Cloud) createVolume(body []byte) answer {
	var in struct {
		Size        int      `json:"size_gigabytes"`
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Region      string   `json:"region"`
		SnapshotID  string   `json:"snapshot_id"`
		FSType      string   `json:"filesystem_type"`
		FSLabel     string   `json:"filesystem_label"`
		Tags        []string `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return c.bad("volume body: %v", err)
	}
	var snap *volumeSnapshot
	if in.SnapshotID != "" {
		if snap = c.snapshots[in.SnapshotID]; snap == nil {
			return unprocessable("Snapshot %s could not be found.", in.SnapshotID)
		}
	}
	switch {
	case !volumeName.MatchString(in.Name):
		return unprocessable("Name must be lowercase letters, digits and dashes, starting with a letter, up to 64 characters.")
	case in.Region != c.opts.Region && snap == nil:
		return unprocessable("Region %q is not available (the fake serves %s).", in.Region, c.opts.Region)
	case in.Size < 1 || in.Size > 16384:
		return unprocessable("size_gigabytes must be between 1 and 16384.")
	case snap != nil && in.Size < snap.size:
		return unprocessable("size_gigabytes must be at least the snapshot's %d.", snap.size)
	}
	for _, t := range in.Tags {
		if !validTag(t) {
			return unprocessable("Tag %q is invalid.", t)
		}
		c.tags[t] = true
	}
	for _, v := range c.volumes {
		if v.name == in.Name {
			return apiError(http.StatusConflict, "conflict", "A volume with the name "+in.Name+" already exists in the region.")
		}
	}
	v := &volume{id: uuid(), name: in.Name, description: in.Description, fsType: in.FSType, size: in.Size, tags: slices.Clone(in.Tags), created: time.Now()}
	if snap != nil {
		v.data = slices.Clone(snap.data)
	}
	if v.path = c.volumePath(v.id); v.path != "" {
		from := ""
		if snap != nil {
			from = snap.path
		}
		if err := rawfile.Make(v.path, from, v.size); err != nil {
			return c.bad("%v", err)
		}
	}
	c.volumes[v.id] = v
	return answer{http.StatusCreated, map[string]any{"volume": c.volumeJSON(v)}}
}

func (c *Cloud) volumeAction(v *volume, body []byte) answer {
	var in struct {
		Type      string `json:"type"`
		DropletID int    `json:"droplet_id"`
		Region    string `json:"region"`
	}
	if err := decode(body, &in); err != nil {
		return c.bad("volume action body: %v", err)
	}
	if c.droplets[in.DropletID] == nil {
		return apiError(http.StatusNotFound, "not_found", "Droplet "+strconv.Itoa(in.DropletID)+" could not be found.")
	}
	if v.plugging {
		return unprocessable("Volume has an action in progress.")
	}
	plug := false
	switch in.Type {
	case "attach":
		if v.droplet != 0 && v.droplet != in.DropletID {
			return unprocessable("Volume is already attached to droplet %d.", v.droplet)
		}
		plug = v.droplet == 0
		v.droplet = in.DropletID
	case "detach":
		if v.droplet != in.DropletID {
			return unprocessable("Volume is not attached to droplet %d.", in.DropletID)
		}
		plug = true
		v.droplet = 0
	default:
		return unprocessable("Action type %q is not one of attach, detach.", in.Type)
	}
	a := c.newAction(in.Type+"_volume", "volume", 0)
	if !plug || !c.plugVolume(v, in.DropletID, in.Type == "attach", a) {
		a.done = true
	}
	return answer{http.StatusAccepted, map[string]any{"action": c.actionJSON(a)}}
}

func (c *Cloud) routeSnapshots(r *http.Request, parts []string) answer {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		var out []map[string]any
		for _, id := range slices.Sorted(maps.Keys(c.snapshots)) {
			out = append(out, c.snapshotJSON(c.snapshots[id]))
		}
		return page(c, r, "snapshots", out)
	case len(parts) == 1:
		s := c.snapshots[parts[0]]
		if s == nil {
			return notFound()
		}
		switch r.Method {
		case http.MethodGet:
			return answer{http.StatusOK, map[string]any{"snapshot": c.snapshotJSON(s)}}
		case http.MethodDelete:
			delete(c.snapshots, s.id)
			if s.path != "" {
				os.Remove(s.path)
			}
			return answer{http.StatusNoContent, nil}
		}
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

func (c *Cloud) volumeJSON(v *volume) map[string]any {
	ids := []int{}
	if v.droplet != 0 {
		ids = append(ids, v.droplet)
	}
	return map[string]any{"id": v.id, "name": v.name, "description": v.description, "size_gigabytes": v.size,
		"droplet_ids": ids, "created_at": apiTime(v.created), "filesystem_type": v.fsType, "filesystem_label": "",
		"tags": nonNil(v.tags), "region": map[string]any{"slug": c.opts.Region, "name": c.opts.Region, "available": true}}
}

func (c *Cloud) snapshotJSON(s *volumeSnapshot) map[string]any {
	return map[string]any{"id": s.id, "name": s.name, "resource_id": s.volumeID, "resource_type": "volume",
		"regions": []string{c.opts.Region}, "min_disk_size": s.size, "size_gigabytes": float64(len(s.data)) / (1 << 30),
		"created_at": apiTime(s.created), "tags": nonNil(s.tags)}
}
