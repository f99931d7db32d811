package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// blockDevices is what mounting a volume needs of the system. The real one (hostDevices) runs
// blkid, mkfs, fsck, mount and chown; tests use a double that records the calls. Paths are the
// system's own (a device path, a mount point under the root).
type blockDevices interface {
	// Exists reports whether the device node (or the by-id link to it) is there yet.
	Exists(dev string) (bool, error)
	// Probe returns what is on dev: its filesystem type, "" when it is blank. A device with
	// something on it that is not a filesystem (a partition table, two signatures) is an error,
	// so that it is never formatted.
	Probe(ctx context.Context, dev string) (string, error)
	// MakeFS makes a filesystem of type fsType labelled label on dev, which Probe found blank.
	MakeFS(ctx context.Context, dev, fsType, label string) error
	// Check repairs what a filesystem check may repair without asking (fsck -p) and fails on
	// the rest.
	Check(ctx context.Context, dev, fsType string) error
	// MountedFrom returns the device mounted on dir, "" when nothing is.
	MountedFrom(dir string) (string, error)
	// Mount mounts dev (a filesystem of type fsType) on dir, which exists.
	Mount(ctx context.Context, dev, dir, fsType string) error
	// Chown gives dir to owner ("user" or "user:group", names resolved on the system).
	Chown(ctx context.Context, dir, owner string) error
	// NVMeBySerial returns the NVMe namespace device (/dev/nvme1n1) whose controller's serial is
	// serial, "" when there is none yet.
	NVMeBySerial(serial string) (string, error)
	// Rescan asks the kernel to look for devices on its buses again, for a hot-plugged disk whose
	// event it missed (one that came while it was still booting). Harmless when nothing is new.
	Rescan() error
}

// volumeWait is how long mounting waits for a device and how often it looks and says so.
type volumeWait struct {
	Limit time.Duration // give up after this long
	Poll  time.Duration // look for the device this often
	Say   time.Duration // print a line on the console (and extend systemd's start timeout) this often
}

// mountVolumes mounts every volume of the user-data, in order, before the services start: it
// waits for each device, formats it only when blank, checks it, mounts it and applies owner and
// mode. It is idempotent: a volume already mounted on its directory from its device is kept as it
// is (a restarted drover-boot). A failure stops at that volume and leaves the ones before it
// mounted; drover-boot then fails, so the services stay stopped.
func (b *boot) mountVolumes(ctx context.Context, dev blockDevices, vols []bootdata.VolumeMount) error {
	for _, v := range vols {
		if err := b.mountVolume(ctx, dev, v); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		b.st.Volumes = append(b.st.Volumes, v.Name+" on "+v.Mount)
	}
	b.st.Waiting = ""
	return nil
}

func (b *boot) mountVolume(ctx context.Context, dev blockDevices, v bootdata.VolumeMount) error {
	path, err := b.waitForDevice(ctx, dev, v)
	if err != nil {
		return err
	}
	if path != v.GuestPath {
		b.say(b.c.Stdout, "volume %s: %s is %s (found by its NVMe serial)", v.Name, v.GuestPath, path)
		v.GuestPath = path
	}
	dir := filepath.Join(b.c.Root, v.Mount)
	from, err := dev.MountedFrom(dir)
	if err != nil {
		return err
	}
	if from != "" {
		if !sameDevice(from, v.GuestPath) {
			return fmt.Errorf("%s is already mounted from %s, not from %s", v.Mount, from, v.GuestPath)
		}
		b.say(b.c.Stdout, "volume %s: already mounted on %s", v.Name, v.Mount)
		return b.applyOwnership(ctx, dev, dir, v)
	}
	found, err := dev.Probe(ctx, v.GuestPath)
	if err != nil {
		return err
	}
	switch found {
	case "":
		b.say(b.c.Stdout, "volume %s: %s is blank: making %s labelled %s", v.Name, v.GuestPath, v.FS, v.Name)
		if err := dev.MakeFS(ctx, v.GuestPath, v.FS, v.Name); err != nil {
			return err
		}
	case v.FS:
		if err := dev.Check(ctx, v.GuestPath, v.FS); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s holds a %s filesystem, want %s: not formatting a device that holds data", v.GuestPath, found, v.FS)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("making the mount point: %w", err)
	}
	if err := dev.Mount(ctx, v.GuestPath, dir, v.FS); err != nil {
		return err
	}
	b.say(b.c.Stdout, "volume %s: %s mounted on %s", v.Name, v.GuestPath, v.Mount)
	return b.applyOwnership(ctx, dev, dir, v)
}

func (b *boot) applyOwnership(ctx context.Context, dev blockDevices, dir string, v bootdata.VolumeMount) error {
	if v.Owner != "" {
		if err := dev.Chown(ctx, dir, v.Owner); err != nil {
			return err
		}
	}
	if v.Mode != 0 {
		// syscall.Chmod takes the Unix bits as written (setuid, setgid, sticky included).
		if err := syscall.Chmod(dir, uint32(v.Mode)); err != nil {
			return fmt.Errorf("mode %s on the mount point: %w", v.Mode, err)
		}
	}
	return nil
}

// ebsPathPrefix is where the AWS provider says an EBS volume is: udev's link for an NVMe device
// of model "Amazon Elastic Block Store" and the volume's serial. The serial is the volume ID
// without its dash, which AWS documents as the way to find a volume (nvme id-ctrl); a device
// whose model is another (a hypervisor of the lab's, an NVMe driver that names it otherwise) has
// another link but the same serial.
const ebsPathPrefix = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"

// findDevice returns the device of guestPath once it is there: guestPath itself, or for an EBS
// path the NVMe namespace with the volume's serial.
func findDevice(dev blockDevices, guestPath string) (string, error) {
	ok, err := dev.Exists(guestPath)
	if err != nil || ok {
		return guestPath, err
	}
	serial, ebs := strings.CutPrefix(guestPath, ebsPathPrefix)
	if !ebs || serial == "" {
		return "", nil
	}
	return dev.NVMeBySerial(serial)
}

// waitForDevice waits until v's device is there and returns its path (findDevice): the handoff
// attaches a volume to a running instance, so it may come long after boot. It says so on the
// console, in the status file and to systemd (extending the unit's start timeout) every
// b.volWait.Say, and gives up after Limit.
func (b *boot) waitForDevice(ctx context.Context, dev blockDevices, v bootdata.VolumeMount) (string, error) {
	start := b.c.Now()
	var lastSaid time.Time
	for {
		path, err := findDevice(dev, v.GuestPath)
		if err != nil {
			return "", err
		}
		if path != "" {
			return path, nil
		}
		waited := b.c.Now().Sub(start)
		if waited >= b.volWait.Limit {
			return "", fmt.Errorf("%s did not appear within %s (is the volume attached to this instance?)", v.GuestPath, b.volWait.Limit)
		}
		if lastSaid.IsZero() || b.c.Now().Sub(lastSaid) >= b.volWait.Say {
			if !lastSaid.IsZero() {
				// A device attached while the kernel was starting can be on the bus with its
				// hot-plug event lost; a rescan finds it. Failing that is only a lost shortcut.
				if err := dev.Rescan(); err != nil {
					b.say(b.c.Stdout, "volume %s: rescanning the PCI bus: %v", v.Name, err)
				}
			}
			lastSaid = b.c.Now()
			b.st.State, b.st.Waiting, b.st.Time = "waiting", "volume "+v.Name+" at "+v.GuestPath, lastSaid.UTC()
			if err := b.writeStatus(); err != nil {
				return "", err
			}
			b.say(b.c.Stdout, "waiting for volume %s at %s (%s so far, giving up after %s); the services start once it is mounted",
				v.Name, v.GuestPath, waited.Round(time.Second), b.volWait.Limit)
			b.c.Notify(fmt.Sprintf("STATUS=waiting for volume %s\nEXTEND_TIMEOUT_USEC=%d", v.Name, (2 * b.volWait.Say).Microseconds()))
		}
		select {
		case <-ctx.Done():
			return "", errInterrupted
		case <-time.After(b.volWait.Poll):
		}
	}
}

// sameDevice reports whether a mount's source is the device behind guestPath (a by-id link).
func sameDevice(source, guestPath string) bool {
	if source == guestPath {
		return true
	}
	target, err := filepath.EvalSymlinks(guestPath)
	return err == nil && target == source
}

// parseBlkid reads `blkid -p -o export` output of a device blkid found something on: its
// filesystem type, or an error when it is something else (so it is never formatted).
func parseBlkid(out string) (string, error) {
	vals := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			vals[k] = v
		}
	}
	switch {
	case vals["TYPE"] != "":
		return vals["TYPE"], nil
	case vals["PTTYPE"] != "":
		return "", fmt.Errorf("holds a %s partition table, not a filesystem: not formatting it", vals["PTTYPE"])
	case len(vals) > 0:
		return "", fmt.Errorf("holds something blkid does not name as a filesystem (%s): not formatting it", oneLine(out))
	}
	return "", errors.New("blkid found something but named nothing: not formatting it")
}
