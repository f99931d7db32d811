package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/qmp"
)

// Volume buses: how a platform presents block storage attached to a running instance.
const (
	// VolumeNVMe is EBS on Nitro: an NVMe controller per volume whose serial is the volume ID
	// without its dash. qemu's model is "QEMU NVMe Ctrl", not "Amazon Elastic Block Store", so
	// udev's link is /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_<serial>: a guest finds the volume by the
	// NVMe serial, which is the same on both.
	VolumeNVMe = "nvme"
	// VolumeVirtio is Vultr block storage: a virtio disk whose serial is the block's mount_id,
	// /dev/disk/by-id/virtio-<mount_id> in the guest.
	VolumeVirtio = "virtio"
	// VolumeSCSI is a DigitalOcean volume: a disk on a virtio-scsi controller, vendor "DO",
	// product "Volume", its device identification (VPD page 0x83) the volume's name, which udev's
	// scsi_id makes /dev/disk/by-id/scsi-0DO_Volume_<name>.
	VolumeSCSI = "scsi"
)

// hotplugPorts is how many PCIe root ports a machine has for hot-plugged NVMe or virtio disks: a
// q35 machine's root bus takes no hot-plugged device, each one needs a port of its own.
const hotplugPorts = 4

const (
	hotplugPortSlot = 0x10 // the first port's slot; the others follow
	scsiSlot        = "0x6"
	monitorFile     = "qmp.sock"
	unplugPoll      = 100 * time.Millisecond
	unplugRepeat    = 5 * time.Second
)

// guestID is what the guest sees of a volume (a serial, a SCSI device id): letters, digits, dashes
// and underscores, at most 20 characters for NVMe and virtio serials (qemu's limit for virtio-blk
// and NVMe's for its serial field), up to 64 for a SCSI device id (a DigitalOcean volume name).
var guestID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// hotplugArgs are the devices a platform's machine needs at boot to take volumes later.
func hotplugArgs(p Platform) []string {
	if p.VolumeBus == VolumeSCSI {
		return []string{"-device", "virtio-scsi-pci,id=scsi0,addr=" + scsiSlot}
	}
	var a []string
	for i := range hotplugPorts {
		a = append(a, "-device", fmt.Sprintf("pcie-root-port,id=%s,chassis=%d,bus=pcie.0,addr=0x%x", portID(i), i+1, hotplugPortSlot+i))
	}
	return a
}

func portID(i int) string { return "hp" + strconv.Itoa(i) }

// qemuIDs are a volume's device id and block node name in qemu, from what the guest sees of it:
// a digest, since node names are at most 31 characters.
func qemuIDs(id string) (device, node string) {
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:8])
	return "vol" + h, "node" + h
}

// AttachVolume hot-plugs the raw file path into the running guest the way the machine's platform
// presents a volume (see VolumeNVMe, VolumeVirtio, VolumeSCSI), id being what the guest sees
// (serial, SCSI device id). It returns once qemu has the device; the guest's kernel finds it a
// moment later. It is idempotent (a block node or device already there is kept) and safe for
// concurrent use (hot-plugs of one machine are serialized). A failure leaves what was added in
// place: DetachVolume takes it out.
func (m *Machine) AttachVolume(ctx context.Context, id, path string) error {
	if err := m.platform.checkVolumeID(id); err != nil {
		return err
	}
	m.hotplugMu.Lock()
	defer m.hotplugMu.Unlock()
	c, err := m.monitor(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	device, node := qemuIDs(id)
	hasNode, err := c.HasNode(ctx, node)
	if err != nil {
		return err
	}
	if !hasNode {
		if _, err := c.Exec(ctx, "blockdev-add", map[string]any{
			"driver": "raw", "node-name": node,
			"file": map[string]any{"driver": "file", "filename": path},
		}); err != nil {
			return fmt.Errorf("vm: attaching volume %s: %w", id, err)
		}
	}
	hasDevice, err := c.HasDevice(ctx, device)
	if err != nil || hasDevice {
		return err
	}
	args := map[string]any{"id": device, "drive": node}
	switch m.platform.VolumeBus {
	case VolumeSCSI:
		args["driver"], args["bus"] = "scsi-hd", "scsi0.0"
		args["vendor"], args["product"], args["device_id"] = "DO", "Volume", id
	default:
		args["driver"] = "nvme"
		if m.platform.VolumeBus == VolumeVirtio {
			args["driver"] = "virtio-blk-pci"
		}
		args["serial"] = id
		port, err := m.freePort()
		if err != nil {
			return fmt.Errorf("vm: attaching volume %s: %w", id, err)
		}
		args["bus"] = port
	}
	if _, err := c.Exec(ctx, "device_add", args); err != nil {
		return fmt.Errorf("vm: attaching volume %s: %w", id, err)
	}
	if bus, ok := args["bus"].(string); ok && m.platform.VolumeBus != VolumeSCSI {
		m.ports[device] = bus
	}
	return nil
}

// DetachVolume takes volume id out of the running guest: it asks the guest to release the
// device, waits until it has (asking again now and then; bounded by ctx), then removes the block
// node, after which qemu no longer has the file open. A volume not attached is no error, so it is
// idempotent; safe for concurrent use. When ctx ends first the device stays, and a later call
// finishes.
func (m *Machine) DetachVolume(ctx context.Context, id string) error {
	m.hotplugMu.Lock()
	defer m.hotplugMu.Unlock()
	c, err := m.monitor(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	device, node := qemuIDs(id)
	if err := c.Unplug(ctx, device, unplugPoll, unplugRepeat); err != nil {
		return err
	}
	delete(m.ports, device)
	hasNode, err := c.HasNode(ctx, node)
	if err != nil || !hasNode {
		return err
	}
	// The device leaves qom-list a moment before it lets go of its node: "is in use" until then.
	for {
		_, err := c.Exec(ctx, "blockdev-del", map[string]string{"node-name": node})
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "is in use") {
			return fmt.Errorf("vm: detaching volume %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vm: detaching volume %s: %w", id, err)
		case <-time.After(unplugPoll):
		}
	}
}

// HasVolume reports whether qemu has volume id's device (attached, or not yet released by the
// guest): the ground truth of who holds a volume, for tests.
func (m *Machine) HasVolume(ctx context.Context, id string) (bool, error) {
	m.hotplugMu.Lock()
	defer m.hotplugMu.Unlock()
	c, err := m.monitor(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	device, _ := qemuIDs(id)
	return c.HasDevice(ctx, device)
}

// freePort is a hot-plug port no volume device of this machine sits on; m.hotplugMu is held.
func (m *Machine) freePort() (string, error) {
	for i := range hotplugPorts {
		if !slices.Contains(slices.Collect(maps.Values(m.ports)), portID(i)) {
			return portID(i), nil
		}
	}
	return "", fmt.Errorf("all %d hot-plug ports are taken: detach a volume first", hotplugPorts)
}

func (m *Machine) monitor(ctx context.Context) (*qmp.Conn, error) {
	return qmp.Dial(ctx, "vm", m.name, m.qmpPath())
}

func (p Platform) checkVolumeID(id string) error {
	limit := 20
	if p.VolumeBus == VolumeSCSI {
		limit = 64
	}
	if !guestID.MatchString(id) || len(id) > limit {
		return fmt.Errorf("vm: volume %q: want letters, digits, dashes and underscores, at most %d of them, for a %s volume", id, limit, p.VolumeBus)
	}
	return nil
}
