package vultrlab

// Block storage, as Vultr's API reference documents it and govultr's BlockStorageService calls it:
// POST /v2/blocks {region, size_gb, label, block_type, snapshot_id} (202 and the block, pending for
// Options.PendingPolls reads, then active), GET /v2/blocks (paginated) and /v2/blocks/{id}, PATCH
// /v2/blocks/{id} {label, size_gb}, DELETE /v2/blocks/{id} (an attached block is refused), POST
// /v2/blocks/{id}/attach {instance_id, live} and /v2/blocks/{id}/detach {live} (204; the block
// must be active, the instance in the block's region, and a block attached elsewhere is refused
// until it is detached). An attach or detach shows in attached_to_instance after PendingPolls
// reads, as the platform's hot-plug takes a while; the block is committed to its new holder at
// once, so a second attach meanwhile is refused. Block storage snapshots: POST and GET
// /v2/blocks/snapshots {block_id, description}, GET and DELETE /v2/blocks/snapshots/{id} (the
// snapshot is its own top-level object, as govultr decodes it). An instance destroyed loses its
// blocks (they are detached). With a Hypervisor a block is a raw file hot-plugged into the
// instance's running machine (blockplug.go); without, API state and the bytes tests write
// (WriteBlock, ReadBlock). Left out: resize, bootable blocks.

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/rawfile"
)

type block struct {
	id, label, region, blockType, mountID, snapshotID string
	size                                              int
	status                                            string // "pending", "active"
	pendingReads                                      int    // reads left that see it pending
	instance                                          string // the holder the block is committed to
	shown                                             string // attached_to_instance as reads report it
	shownReads                                        int    // reads left before shown catches up with instance
	created                                           time.Time
	data                                              []byte // what tests wrote at the block's start, without a file
	path                                              string // its raw file, with a Hypervisor (blockplug.go)
	plugging                                          bool   // a hot-plug runs: shown waits for it
}

type blockSnapshot struct {
	id, blockID, description string
	size                     int
	created                  time.Time
	data                     []byte
	path                     string // a copy of the block's file, when it had one
}

type blockJSON struct {
	ID                 string  `json:"id"`
	DateCreated        string  `json:"date_created"`
	Cost               float32 `json:"cost"`
	Status             string  `json:"status"`
	SizeGB             int     `json:"size_gb"`
	Region             string  `json:"region"`
	AttachedToInstance string  `json:"attached_to_instance"`
	Label              string  `json:"label"`
	MountID            string  `json:"mount_id"`
	BlockType          string  `json:"block_type"`
	SnapshotID         string  `json:"snapshot_id"`
}

// read is one read of b: its pending time and a pending attach or detach run down. c.mu is held.
func (b *block) read() blockJSON {
	if b.status == "pending" {
		if b.pendingReads > 0 {
			b.pendingReads--
		} else {
			b.status = "active"
		}
	}
	if b.shown != b.instance && !b.plugging {
		if b.shownReads > 0 {
			b.shownReads--
		} else {
			b.shown = b.instance
		}
	}
	return blockJSON{ID: b.id, DateCreated: vultrTime(b.created), Cost: float32(b.size) / 10, Status: b.status, SizeGB: b.size,
		Region: b.region, AttachedToInstance: b.shown, Label: b.label, MountID: b.mountID, BlockType: b.blockType, SnapshotID: b.snapshotID}
}

type blockSnapshotJSON struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	BlockID     string `json:"block_id"`
	State       string `json:"state"`
	DateCreated string `json:"added_at"`
	DateUpdated string `json:"updated_at"`
	Size        int    `json:"size"`
}

func (s *blockSnapshot) json() blockSnapshotJSON {
	return blockSnapshotJSON{s.id, s.description, s.blockID, "COMPLETE", vultrTime(s.created), vultrTime(s.created), s.size}
}

// WriteBlock writes data at the start of block id, as a guest would; false when there is none.
func (c *Cloud) WriteBlock(id string, data []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[id]
	if b == nil {
		return false
	}
	if b.path != "" {
		return writeAt(b.path, data) == nil
	}
	if len(b.data) < len(data) {
		b.data = append(b.data, make([]byte, len(data)-len(b.data))...)
	}
	copy(b.data, data)
	return true
}

// ReadBlock reads n bytes from the start of block id (zeros where nothing was written).
func (c *Cloud) ReadBlock(id string, n int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[id]
	if b == nil {
		return nil, false
	}
	out := make([]byte, n)
	if b.path != "" {
		return out, readAt(b.path, out) == nil
	}
	copy(out, b.data)
	return out, true
}

// BlockHolder is the instance block id is attached (or being attached) to, "" for none.
func (c *Cloud) BlockHolder(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.blocks[id]; b != nil {
		return b.instance
	}
	return ""
}

// mountID is what a guest sees as the block's virtio serial: the region and 14 hex digits.
func mountID(region string) string {
	b := make([]byte, 7)
	_, _ = rand.Read(b)
	return region + "-" + hex.EncodeToString(b)
}

func (c *Cloud) createBlock(r *http.Request) (int, any) {
	var req struct {
		Region     string `json:"region"`
		SizeGB     int    `json:"size_gb"`
		Label      string `json:"label"`
		BlockType  string `json:"block_type"`
		SnapshotID string `json:"snapshot_id"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	if req.BlockType == "" {
		req.BlockType = "high_perf"
	}
	switch {
	case req.Region != c.opts.Region:
		return errorf(http.StatusBadRequest, "Invalid region %q: this account's fake has only %q.", req.Region, c.opts.Region)
	case req.SizeGB < 1 || req.SizeGB > 10000:
		return errorf(http.StatusBadRequest, "Invalid size_gb %d: between 1 and 10000.", req.SizeGB)
	case req.BlockType != "high_perf" && req.BlockType != "storage_opt":
		return errorf(http.StatusBadRequest, "Invalid block_type %q: high_perf or storage_opt.", req.BlockType)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &block{id: newID(), label: req.Label, region: req.Region, blockType: req.BlockType, mountID: mountID(req.Region),
		size: req.SizeGB, status: "pending", pendingReads: c.opts.PendingPolls, created: time.Now().Truncate(time.Second)}
	if req.SnapshotID != "" {
		s := c.blockSnaps[req.SnapshotID]
		switch {
		case s == nil:
			return errorf(http.StatusBadRequest, "Invalid snapshot_id %q.", req.SnapshotID)
		case req.SizeGB < s.size:
			return errorf(http.StatusBadRequest, "Invalid size_gb %d: snapshot %s is %d GB.", req.SizeGB, s.id, s.size)
		}
		b.snapshotID, b.data = s.id, slices.Clone(s.data)
	}
	if b.path = c.blockPath(b.id); b.path != "" {
		from := ""
		if req.SnapshotID != "" {
			from = c.blockSnaps[req.SnapshotID].path
		}
		if err := rawfile.Make(b.path, from, b.size); err != nil {
			return errorf(http.StatusInternalServerError, "%v", err)
		}
	}
	c.blocks[b.id] = b
	j := b.read()
	b.pendingReads++ // the create answer is not a read
	j.Status = "pending"
	return http.StatusAccepted, map[string]any{"block": j}
}

// sortedBlocks is every block, oldest first (ties by ID); c.mu is held.
func (c *Cloud) sortedBlocks() []*block {
	out := make([]*block, 0, len(c.blocks))
	for _, b := range c.blocks {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

func (c *Cloud) listBlocks(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.sortedBlocks()
	from, to, m, ok := page(r, len(all))
	if !ok {
		return errorf(http.StatusBadRequest, "Invalid per_page or cursor.")
	}
	out := []blockJSON{}
	for _, b := range all[from:to] {
		out = append(out, b.read())
	}
	return http.StatusOK, map[string]any{"blocks": out, "meta": m}
}

// lookupBlock finds the block of the route's id; c.mu is held.
func (c *Cloud) lookupBlock(r *http.Request) (*block, int, any) {
	b, ok := c.blocks[r.PathValue("id")]
	if !ok {
		s, body := errorf(http.StatusNotFound, "Invalid block storage ID.")
		return nil, s, body
	}
	return b, 0, nil
}

func (c *Cloud) getBlock(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, s, body := c.lookupBlock(r)
	if b == nil {
		return s, body
	}
	return http.StatusOK, map[string]any{"block": b.read()}
}

func (c *Cloud) updateBlock(r *http.Request) (int, any) {
	var req struct {
		SizeGB int    `json:"size_gb"`
		Label  string `json:"label"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, s, body := c.lookupBlock(r)
	if b == nil {
		return s, body
	}
	if req.SizeGB != 0 && req.SizeGB < b.size {
		return errorf(http.StatusBadRequest, "Invalid size_gb %d: a block only grows (it is %d GB).", req.SizeGB, b.size)
	}
	if req.SizeGB != 0 {
		b.size = req.SizeGB
	}
	if req.Label != "" {
		b.label = req.Label
	}
	return http.StatusNoContent, nil
}

func (c *Cloud) deleteBlock(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, s, body := c.lookupBlock(r)
	if b == nil {
		return s, body
	}
	if b.instance != "" {
		return errorf(http.StatusBadRequest, "Block storage volume is attached to instance %s: detach it first.", b.instance)
	}
	delete(c.blocks, b.id)
	if b.path != "" {
		os.Remove(b.path)
	}
	return http.StatusNoContent, nil
}

func (c *Cloud) attachBlock(r *http.Request) (int, any) {
	var req struct {
		InstanceID string `json:"instance_id"`
		Live       *bool  `json:"live"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, s, body := c.lookupBlock(r)
	if b == nil {
		return s, body
	}
	in, ok := c.instances[req.InstanceID]
	switch {
	case !ok:
		return errorf(http.StatusBadRequest, "Invalid instance_id %q.", req.InstanceID)
	case b.status != "active":
		return errorf(http.StatusBadRequest, "Block storage volume %s is %s: wait until it is active.", b.id, b.status)
	case in.Region != b.region:
		return errorf(http.StatusBadRequest, "Block storage volume is in %s, instance %s in %s.", b.region, in.ID, in.Region)
	case b.instance != "":
		return errorf(http.StatusBadRequest, "Block storage volume is already attached to instance %s: detach it first.", b.instance)
	case b.plugging:
		return errorf(http.StatusBadRequest, "Block storage volume is being detached: wait until it is.")
	}
	b.instance, b.shownReads = in.ID, c.opts.PendingPolls
	c.plugBlock(b, in, true)
	return http.StatusNoContent, nil
}

func (c *Cloud) detachBlock(r *http.Request) (int, any) {
	var req struct {
		Live *bool `json:"live"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, s, body := c.lookupBlock(r)
	if b == nil {
		return s, body
	}
	if b.instance == "" {
		return errorf(http.StatusBadRequest, "Block storage volume is not currently attached to a server.")
	}
	if b.plugging {
		return errorf(http.StatusBadRequest, "Block storage volume is being attached to instance %s: wait until it is.", b.instance)
	}
	holder := c.instances[b.instance]
	b.instance, b.shownReads = "", c.opts.PendingPolls
	if holder != nil {
		c.plugBlock(b, holder, false)
	}
	return http.StatusNoContent, nil
}

// detachBlocksOf detaches every block of instance id, destroyed; c.mu is held.
func (c *Cloud) detachBlocksOf(id string) {
	for _, b := range c.blocks {
		if b.instance == id {
			b.instance, b.shown, b.shownReads = "", "", 0
		}
	}
}

func (c *Cloud) createBlockSnapshot(r *http.Request) (int, any) {
	var req struct {
		BlockID     string `json:"block_id"`
		Description string `json:"description"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[req.BlockID]
	if b == nil {
		return errorf(http.StatusNotFound, "Invalid block_id %q.", req.BlockID)
	}
	s := &blockSnapshot{id: newID(), blockID: b.id, description: req.Description, size: b.size,
		created: time.Now().Truncate(time.Second), data: slices.Clone(b.data)}
	if b.path != "" {
		// A snapshot of an attached block is crash-consistent, as Vultr's is.
		s.path = filepath.Join(c.opts.Dir, "blocks", "snapshot-"+s.id+".raw")
		if err := rawfile.Copy(s.path, b.path); err != nil {
			return errorf(http.StatusInternalServerError, "%v", err)
		}
	}
	c.blockSnaps[s.id] = s
	return http.StatusCreated, s.json()
}

func (c *Cloud) listBlockSnapshots(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := make([]*blockSnapshot, 0, len(c.blockSnaps))
	for _, s := range c.blockSnaps {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	from, to, m, ok := page(r, len(all))
	if !ok {
		return errorf(http.StatusBadRequest, "Invalid per_page or cursor.")
	}
	out := []blockSnapshotJSON{}
	for _, s := range all[from:to] {
		out = append(out, s.json())
	}
	return http.StatusOK, map[string]any{"snapshots": out, "meta": m}
}

func (c *Cloud) getBlockSnapshot(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.blockSnaps[r.PathValue("id")]
	if s == nil {
		return errorf(http.StatusNotFound, "Invalid snapshot ID.")
	}
	return http.StatusOK, s.json()
}

func (c *Cloud) deleteBlockSnapshot(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.blockSnaps[r.PathValue("id")]
	if s == nil {
		return errorf(http.StatusNotFound, "Invalid snapshot ID.")
	}
	delete(c.blockSnaps, s.id)
	if s.path != "" {
		os.Remove(s.path)
	}
	return http.StatusNoContent, nil
}

// PlaceBlock moves block id to region, as if it had been created there: the fake serves one
// region, and this lets a test see a block and an instance of different regions.
func (c *Cloud) PlaceBlock(id, region string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[id]
	if b == nil {
		return false
	}
	b.region = region
	return true
}
