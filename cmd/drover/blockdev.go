package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// hostBlock is where the kernel tells about block devices and mounts: /sys, /proc/self/mountinfo
// and /proc/swaps on a real host, a fake tree in tests.
type hostBlock struct {
	sys       string
	mountinfo string
	swaps     string
}

func realHostBlock() hostBlock {
	return hostBlock{sys: "/sys", mountinfo: "/proc/self/mountinfo", swaps: "/proc/swaps"}
}

// blockDevice is a whole disk as sysfs names it.
type blockDevice struct {
	name      string // sda, mmcblk0, loop3
	dev       string // MAJOR:MINOR
	size      int64  // bytes
	removable bool
	parts     map[string]string // MAJOR:MINOR -> partition name
}

// errNotRemovable is the one refusal --force overrides.
var errNotRemovable = errors.New("not removable")

// checkTarget decides whether the block device with device number rdev may be overwritten by an
// image of length bytes. It refuses a partition, a device smaller than the image, one that holds the
// running system's root, one with a mounted, swapped-on or held (LVM, RAID) partition, and, unless
// force, one the kernel does not call removable (wrapping errNotRemovable). Only reads h.
func (h hostBlock) checkTarget(path string, rdev uint64, length int64, force bool) (blockDevice, error) {
	d, err := h.lookup(rdev)
	if err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	mounts, root, err := h.mounts()
	if err != nil {
		return d, err
	}
	devs := map[string]string{d.dev: d.name}
	for dev, name := range d.parts {
		devs[dev] = name
	}
	if name, ok := devs[root]; ok {
		return d, fmt.Errorf("%s (%s) holds the running system's root filesystem (/ is on %s); it is never overwritten", path, d.name, name)
	}
	for dev, name := range devs {
		if where, ok := mounts[dev]; ok {
			return d, fmt.Errorf("%s (%s) is mounted: %s on %s; unmount it first (umount %s)", path, d.name, name, where, where)
		}
		if holders, _ := os.ReadDir(filepath.Join(h.sys, "class/block", name, "holders")); len(holders) > 0 {
			return d, fmt.Errorf("%s (%s) is in use: %s is held by %s (LVM, RAID or dm-crypt); release it first", path, d.name, name, holders[0].Name())
		}
	}
	if swapped, err := h.swapped(devs); err != nil || swapped != "" {
		if err != nil {
			return d, err
		}
		return d, fmt.Errorf("%s (%s) is in use as swap (%s); swapoff it first", path, d.name, swapped)
	}
	if d.size < length {
		return d, fmt.Errorf("%s (%s) holds %d bytes, the image %d: use a card of at least that size", path, d.name, d.size, length)
	}
	if !d.removable && !force {
		return d, fmt.Errorf("%s (%s) is %w media (/sys/block/%s/removable is 0): if it is the card, --force writes it", path, d.name, errNotRemovable, d.name)
	}
	return d, nil
}

// lookup finds the whole disk of device number rdev in sysfs; a partition is refused.
func (h hostBlock) lookup(rdev uint64) (blockDevice, error) {
	dev := fmt.Sprintf("%d:%d", (rdev>>8)&0xfff|(rdev>>32)&^0xfff, rdev&0xff|(rdev>>12)&^0xff)
	link, err := os.Readlink(filepath.Join(h.sys, "dev/block", dev))
	if err != nil {
		return blockDevice{}, fmt.Errorf("block device %s is not in %s/dev/block: %w", dev, h.sys, err)
	}
	d := blockDevice{name: filepath.Base(link), dev: dev, parts: map[string]string{}}
	dir := filepath.Join(h.sys, "class/block", d.name)
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		parent := filepath.Base(filepath.Dir(link))
		return d, fmt.Errorf("%s is a partition; name the whole card (/dev/%s)", d.name, parent)
	}
	sectors, err := readSysInt(filepath.Join(dir, "size"))
	if err != nil {
		return d, err
	}
	d.size = sectors * 512 // sysfs counts 512-byte sectors whatever the device's
	removable, err := readSysInt(filepath.Join(dir, "removable"))
	if err != nil {
		return d, err
	}
	d.removable = removable == 1
	entries, err := os.ReadDir(filepath.Join(h.sys, "block", d.name))
	if err != nil {
		return d, fmt.Errorf("block device %s: %w", d.name, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), d.name) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(h.sys, "block", d.name, e.Name(), "dev")); err == nil {
			d.parts[strings.TrimSpace(string(b))] = e.Name()
		}
	}
	return d, nil
}

// mounts maps the device number of every mounted filesystem to a mount point, and says which
// device holds /.
func (h hostBlock) mounts() (map[string]string, string, error) {
	f, err := os.Open(h.mountinfo)
	if err != nil {
		return nil, "", fmt.Errorf("reading the mounts: %w", err)
	}
	defer f.Close()
	out, root := map[string]string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if _, seen := out[fields[2]]; !seen {
			out[fields[2]] = fields[4]
		}
		if fields[4] == "/" {
			root = fields[2]
		}
	}
	return out, root, sc.Err()
}

// swapped names the first of devs (device number -> name) in /proc/swaps, or "".
func (h hostBlock) swapped(devs map[string]string) (string, error) {
	b, err := os.ReadFile(h.swaps)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the swaps: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		for _, name := range devs {
			if fields[0] == "/dev/"+name {
				return fields[0], nil
			}
		}
	}
	return "", nil
}

func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("block device: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("block device: %s: %w", path, err)
	}
	return n, nil
}

// dropCache has the kernel forget a block device's cached pages (BLKFLSBUF), so that reading it
// back reads the device, not what was just written to memory.
func dropCache(f *os.File) error {
	const blkflsbuf = 0x1261
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkflsbuf, 0); errno != 0 {
		return fmt.Errorf("dropping %s's cache: %w", f.Name(), errno)
	}
	return nil
}
