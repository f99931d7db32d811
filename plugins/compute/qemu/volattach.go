package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// unplugPoll is how often DetachVolume asks whether the guest has released
// the device.
const unplugPoll = 100 * time.Millisecond

// unplugRepeat is how long DetachVolume waits for the guest before it asks
// again (device_del once more).
const unplugRepeat = 5 * time.Second

// undoTimeout bounds taking a volume out again after a failed attach.
const undoTimeout = 30 * time.Second

// nodeName is the volume's block node in qemu; the device's id is the
// volume ID itself.
func nodeName(id string) string { return "node-" + id }

// AttachVolume implements compute.Volumes: it records the holder, then
// hot-plugs the volume through QMP and confirms it with query-block. The
// instance must be running. When the QMP calls fail, what was plugged in is
// taken out again and the holder cleared; if that fails too, the record
// keeps the holder and a retry of AttachVolume or DetachVolume finishes.
func (p *Provider) AttachVolume(ctx context.Context, id, instance string) (compute.Volume, error) {
	unlock, err := p.lock(ctx)
	if err != nil {
		return compute.Volume{}, err
	}
	defer unlock()
	v, err := p.volumeRecord(id)
	if err != nil {
		return compute.Volume{}, err
	}
	r, err := p.record(instance)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("qemu: attaching volume %s: %w", id, err)
	}
	switch in := p.instance(r); in.State {
	case compute.Running:
	case compute.Stopped:
		return compute.Volume{}, fmt.Errorf("qemu: attaching volume %s: instance %s is stopped: start it first", id, instance)
	default:
		return compute.Volume{}, fmt.Errorf("qemu: attaching volume %s: instance %s is %s: %w", id, instance, in.State, compute.ErrNotFound)
	}
	if h, _ := p.holder(v); h != "" && h != instance {
		return compute.Volume{}, fmt.Errorf("qemu: attaching volume %s to %s: it is attached to %s: %w", id, instance, h, compute.ErrVolumeInUse)
	}
	v.Holder, v.HolderPID = instance, r.PID
	if err := p.writeVolume(v); err != nil {
		return compute.Volume{}, err
	}
	if err := p.plug(ctx, v); err != nil {
		// Undone even when ctx ended, but bounded: a guest may never release the device.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if uerr := p.unplug(uctx, v); uerr == nil {
			v.Holder, v.HolderPID = "", 0
			p.writeVolume(v)
		}
		return compute.Volume{}, err
	}
	return p.volume(v), nil
}

// plug adds the volume's block node and device to its holder's VM, each
// unless it is there already (a retry after a crash), and confirms it: the
// node, the device, and query-block showing the node inserted in a device.
func (p *Provider) plug(ctx context.Context, v *volumeRecord) error {
	m, err := DialMonitor(ctx, v.Holder, p.MonitorPath(v.Holder))
	if err != nil {
		return err
	}
	defer m.Close()
	block, err := m.volumeBlock(ctx, v.ID)
	if err != nil {
		return err
	}
	if block.Node == "" {
		if _, err := m.exec(ctx, "blockdev-add", map[string]any{
			"driver": "qcow2", "node-name": nodeName(v.ID),
			"file": map[string]any{"driver": "file", "filename": p.VolumePath(v.ID)},
		}); err != nil {
			return fmt.Errorf("qemu: attaching volume %s to %s: %w", v.ID, v.Holder, err)
		}
	}
	if !block.Device {
		if _, err := m.exec(ctx, "device_add", map[string]any{
			"driver": "virtio-blk-pci", "id": v.ID, "drive": nodeName(v.ID), "serial": v.ID,
		}); err != nil {
			return fmt.Errorf("qemu: attaching volume %s to %s: %w", v.ID, v.Holder, err)
		}
	}
	block, err = m.volumeBlock(ctx, v.ID)
	if err != nil {
		return err
	}
	inserted, err := m.VolumeBlocks(ctx)
	if err != nil {
		return err
	}
	if !block.Device || block.Node == "" || !slices.Contains(inserted, v.ID) {
		return fmt.Errorf("qemu: attaching volume %s to %s: after device_add, qemu shows node %v, device %v, in query-block %v",
			v.ID, v.Holder, block.Node != "", block.Device, slices.Contains(inserted, v.ID))
	}
	return nil
}

// DetachVolume implements compute.Volumes: device_del, then it waits until
// the guest has released the device (polling qom-list, bounded by ctx),
// removes the block node and clears the holder. A volume whose holder is
// gone (terminated, stopped, died) is only cleared in the record.
func (p *Provider) DetachVolume(ctx context.Context, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	v, err := p.volumeRecord(id)
	if err != nil {
		return err
	}
	if v.Holder == "" {
		return nil
	}
	if h, _ := p.holder(v); h != "" {
		if err := p.unplug(ctx, v); err != nil {
			return err
		}
	}
	v.Holder, v.HolderPID = "", 0
	return p.writeVolume(v)
}

// unplug takes the volume's device and block node out of its holder's VM.
func (p *Provider) unplug(ctx context.Context, v *volumeRecord) error {
	m, err := DialMonitor(ctx, v.Holder, p.MonitorPath(v.Holder))
	if err != nil {
		return err
	}
	defer m.Close()
	block, err := m.volumeBlock(ctx, v.ID)
	if err != nil {
		return err
	}
	if block.Device {
		// The guest releases the device when its ACPI hot-plug handler runs; Unplug asks again
		// every unplugRepeat, so a request the guest let pass is a delay instead of a hang.
		// Its errors name the holder and the volume already.
		if err := m.c.Unplug(ctx, v.ID, unplugPoll, unplugRepeat); err != nil {
			return err
		}
		if block, err = m.volumeBlock(ctx, v.ID); err != nil {
			return err
		}
	}
	if block.Node != "" {
		if _, err := m.exec(ctx, "blockdev-del", map[string]string{"node-name": nodeName(v.ID)}); err != nil {
			return fmt.Errorf("qemu: detaching volume %s from %s: %w", v.ID, v.Holder, err)
		}
	}
	return nil
}

// pluggedVolume is what a VM has of a volume.
type pluggedVolume struct {
	Node   string // the block node's name, "" when there is none
	Device bool   // the virtio-blk device is there (not yet released by the guest)
}

// volumeBlock asks the VM whether it has the volume's block node
// (query-named-block-nodes) and device (qom-list of /machine/peripheral).
func (m *Monitor) volumeBlock(ctx context.Context, id string) (pluggedVolume, error) {
	var out pluggedVolume
	hasNode, err := m.c.HasNode(ctx, nodeName(id))
	if err != nil {
		return out, err
	}
	if hasNode {
		out.Node = nodeName(id)
	}
	out.Device, err = m.c.HasDevice(ctx, id)
	return out, err
}

// VolumeBlocks lists the volumes the VM has a block device of, from
// query-block: the ground truth of who holds a volume, for tests that check
// no two VMs ever have one.
func (m *Monitor) VolumeBlocks(ctx context.Context) ([]string, error) {
	raw, err := m.exec(ctx, "query-block", nil)
	if err != nil {
		return nil, err
	}
	var blocks []struct {
		Inserted *struct {
			Node string `json:"node-name"`
		} `json:"inserted"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, fmt.Errorf("qemu: monitor of %s: query-block: %w", m.id, err)
	}
	var ids []string
	for _, b := range blocks {
		if b.Inserted != nil && strings.HasPrefix(b.Inserted.Node, "node-vol-") {
			ids = append(ids, strings.TrimPrefix(b.Inserted.Node, "node-"))
		}
	}
	return ids, nil
}

var errSnapshotAttached = errors.New("the lab snapshots only detached volumes (qemu holds an attached one's qcow2 open and locked): detach it first")
