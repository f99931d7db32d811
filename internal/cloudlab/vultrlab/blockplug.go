package vultrlab

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// VolumeAttacher is the optional interface of a Machine that can hot-plug a block's raw file into
// the running guest, as a virtio disk whose serial is the block's mount_id (what Vultr's CSI
// driver opens as /dev/disk/by-id/virtio-<mount_id>). AttachVolume returns once the VM has the
// device; DetachVolume once the guest has released it. vm.Machine implements it.
type VolumeAttacher interface {
	AttachVolume(ctx context.Context, id, path string) error
	DetachVolume(ctx context.Context, id string) error
}

// hotplugLimit bounds one hot-plug: a guest that never releases a device leaves the block
// attached.
const hotplugLimit = 3 * time.Minute

// With a Hypervisor, a block's bytes are a sparse raw file of its size under Options.Dir (the
// guest writes them); without, the bytes tests write (data). An attach or detach of a block whose
// instance has a running machine that is a VolumeAttacher is hot-plugged: attached_to_instance
// shows the new holder only once the machine says the plug is done, and a plug that fails puts
// the block back where it was. An instance halted or still booting gets the block in the API
// only, and its machine gets the block plugged in once it has booted (plugBlocksOf), as Vultr's
// hypervisor gives a started instance its attached blocks.

// blockPath is the raw file of a new block, or "" without a Hypervisor.
func (c *Cloud) blockPath(id string) string {
	if c.opts.Hypervisor == nil {
		return ""
	}
	return filepath.Join(c.opts.Dir, "blocks", id+".raw")
}

// plugBlocksOf plugs the blocks attached to in into its machine, which has just booted; c.mu is
// held.
func (c *Cloud) plugBlocksOf(in *instance) {
	for _, b := range c.blocks {
		if b.instance == in.ID && !b.plugging {
			c.plugBlock(b, in, true)
		}
	}
}

// plugBlock hot-plugs b into (attach) or out of (detach) the machine of instance in, when it has a
// running one that can; it reports whether it does (then b is plugging until it is done). c.mu is
// held; the plug runs in a goroutine of its own.
func (c *Cloud) plugBlock(b *block, in *instance, attach bool) bool {
	va, ok := in.machine.(VolumeAttacher)
	if !ok || b.path == "" {
		return false
	}
	b.plugging = true
	id, mount, path := in.ID, b.mountID, b.path
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, hotplugLimit)
		defer cancel()
		var err error
		if attach {
			err = va.AttachVolume(ctx, mount, path)
		} else {
			err = va.DetachVolume(ctx, mount)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		b.plugging = false
		switch {
		case err != nil && attach && b.instance == id:
			c.t.Logf("vultrlab: attaching block %s to %s: %v", b.id, id, err)
			b.instance = ""
		case err != nil && !attach && b.instance == "":
			c.t.Logf("vultrlab: detaching block %s from %s: %v", b.id, id, err)
			b.instance = id
		}
		b.shownReads = 0
	}()
	return true
}

// writeAt writes data at the start of the file path.
func writeAt(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readAt fills out from the start of the file path.
func readAt(path string, out []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadAt(out, 0)
	return err
}
