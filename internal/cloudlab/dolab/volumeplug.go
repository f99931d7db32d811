package dolab

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// VolumeAttacher is the optional interface of a Machine that can hot-plug a volume's raw file
// into the running droplet, as a disk on its virtio-scsi controller with vendor "DO", product
// "Volume" and the volume's name as its device identification, which udev links as
// /dev/disk/by-id/scsi-0DO_Volume_<name> (where DigitalOcean documents a volume). AttachVolume
// returns once the VM has the disk; DetachVolume once it is gone. vm.Machine implements it.
type VolumeAttacher interface {
	AttachVolume(ctx context.Context, id, path string) error
	DetachVolume(ctx context.Context, id string) error
}

// hotplugLimit bounds one hot-plug.
const hotplugLimit = 3 * time.Minute

// With a Hypervisor, a volume's bytes are a sparse raw file of its size under Options.Dir;
// without, the bytes tests write (data). An attach or detach action on a droplet with a running
// machine that is a VolumeAttacher hot-plugs the file and completes only once the plug is done
// (errored when it failed, the volume then back where it was). A droplet powered off or still
// booting gets the volume in the API only, and its machine gets it plugged in once it has booted
// (plugVolumesOf), as a droplet powered on again has its attached volumes.

// volumePath is the raw file of a new volume, or "" without a Hypervisor.
func (c *Cloud) volumePath(id string) string {
	if c.opts.Hypervisor == nil {
		return ""
	}
	return filepath.Join(c.opts.Dir, "volumes", id+".raw")
}

// plugVolumesOf plugs the volumes attached to d into its machine, which has just booted; c.mu is
// held. Their actions are done already: the plug's own is recorded only.
func (c *Cloud) plugVolumesOf(d *droplet) {
	for _, v := range c.volumes {
		if v.droplet == d.ID && !v.plugging {
			c.plugVolume(v, d.ID, true, c.newAction("attach_volume", "volume", 0))
		}
	}
}

// plugVolume hot-plugs v into (attach) or out of (detach) the machine of droplet id, when it has a
// running one that can, and finishes a when done; it reports whether it does. c.mu is held; the
// plug runs in a goroutine of its own.
func (c *Cloud) plugVolume(v *volume, id int, attach bool, a *action) bool {
	d := c.droplets[id]
	if d == nil || v.path == "" {
		return false
	}
	va, ok := d.machine.(VolumeAttacher)
	if !ok {
		return false
	}
	v.plugging = true
	name, path := v.name, v.path
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, hotplugLimit)
		defer cancel()
		var err error
		if attach {
			err = va.AttachVolume(ctx, name, path)
		} else {
			err = va.DetachVolume(ctx, name)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		v.plugging = false
		switch {
		case err != nil && attach && v.droplet == id:
			c.t.Logf("dolab: attaching volume %s to droplet %d: %v", v.id, id, err)
			v.droplet = 0
		case err != nil && !attach && v.droplet == 0:
			c.t.Logf("dolab: detaching volume %s from droplet %d: %v", v.id, id, err)
			v.droplet = id
		}
		a.finish(err != nil)
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
