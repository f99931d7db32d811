package memory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.Provider = (*Device)(nil)
	_ compute.Slots    = (*Device)(nil)
)

// BundleManifest is the file of an update bundle that Device reads as the bundle's content (the
// abslot bundle's manifest: its block hashes name what the slot holds).
const BundleManifest = "bundle.json"

// Device is an in-memory set of A/B devices (compute.Slots) for tests of code that updates them,
// such as the rollout controller's ab strategy. Each host has two slots whose content is the sha256
// of the bundle manifest written to it; a reboot boots the armed slot once on trial, or the
// committed one, as a Pi's firmware does. A slot whose content is marked with Hang never comes up:
// the watchdog resets the device into its committed slot. Safe for concurrent use.
type Device struct {
	mu    sync.Mutex
	hosts map[string]*device
	order []string
	hangs map[string]bool // contents whose boot hangs
	// downPolls is how many SlotStatus calls after a reboot fail as if the device were still
	// booting.
	downPolls  int
	writeFails int // writes that fail part way, as a power cut does
}

type device struct {
	addr      netip.Addr
	content   map[string]string // slot -> content ("" never written; "partial" a write that failed)
	committed string
	booted    string
	armed     string // the slot of a one-time trial at the next boot
	boots     int
	down      int // status calls left that fail
	sent      int64
}

// NewDevice returns devices named by hosts (each at its address), each running and committed on
// slot a, which holds content "factory".
func NewDevice(hosts map[string]netip.Addr, order ...string) *Device {
	d := &Device{hosts: map[string]*device{}, hangs: map[string]bool{}}
	for h, a := range hosts {
		d.hosts[h] = &device{addr: a, content: map[string]string{"a": "factory", "b": ""}, committed: "a", booted: "a"}
	}
	d.order = order
	if len(d.order) == 0 {
		for h := range hosts {
			d.order = append(d.order, h)
		}
	}
	return d
}

// BundleContent is the content a slot written from bundleDir holds.
func BundleContent(bundleDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(bundleDir, BundleManifest))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Hang makes every boot of a slot holding content hang (the watchdog then resets the device).
func (d *Device) Hang(content string) {
	d.mu.Lock()
	d.hangs[content] = true
	d.mu.Unlock()
}

// DownPolls makes the device unreachable for n SlotStatus calls after each reboot.
func (d *Device) DownPolls(n int) {
	d.mu.Lock()
	d.downPolls = n
	d.mu.Unlock()
}

// FailWrites makes the next n writes fail part way, leaving the slot partly written.
func (d *Device) FailWrites(n int) {
	d.mu.Lock()
	d.writeFails = n
	d.mu.Unlock()
}

// Running is what host runs: its slot, that slot's content, and how many times it booted.
func (d *Device) Running(host string) (slot, content string, boots int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[host]
	return h.booted, h.content[h.booted], h.boots
}

// Content is what slot of host holds.
func (d *Device) Content(host, slot string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hosts[host].content[slot]
}

func (d *Device) host(ctx context.Context, host string) (*device, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	h := d.hosts[host]
	if h == nil {
		return nil, fmt.Errorf("memory: no device %q", host)
	}
	return h, nil
}

func checkSlot(slot string) error {
	if slot != "a" && slot != "b" {
		return fmt.Errorf("memory: slot %q: want a or b", slot)
	}
	return nil
}

// SlotStatus implements compute.Slots.
func (d *Device) SlotStatus(ctx context.Context, host string) (compute.SlotStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.host(ctx, host)
	if err != nil {
		return compute.SlotStatus{}, err
	}
	if h.down > 0 {
		h.down--
		return compute.SlotStatus{}, fmt.Errorf("memory: %s: connection refused (booting)", host)
	}
	return compute.SlotStatus{Committed: h.committed, Booted: h.booted, Trial: h.booted != h.committed, BootID: strconv.Itoa(h.boots)}, nil
}

// WriteSlot implements compute.Slots: the running and the committed slot are refused.
func (d *Device) WriteSlot(ctx context.Context, host, slot, bundleDir string) (compute.SlotWrite, error) {
	content, err := BundleContent(bundleDir)
	if err != nil {
		return compute.SlotWrite{}, fmt.Errorf("memory: the update bundle: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.host(ctx, host)
	if err != nil {
		return compute.SlotWrite{}, err
	}
	if err := checkSlot(slot); err != nil {
		return compute.SlotWrite{}, err
	}
	if slot == h.booted || slot == h.committed {
		return compute.SlotWrite{}, fmt.Errorf("memory: %s: slot %s is running or committed: write the other slot", host, slot)
	}
	if d.writeFails > 0 {
		d.writeFails--
		h.content[slot] = "partial"
		return compute.SlotWrite{}, fmt.Errorf("memory: %s: connection lost while writing slot %s", host, slot)
	}
	var sent int64
	if h.content[slot] != content {
		sent = 1 << 20
	}
	h.content[slot] = content
	h.sent += sent
	return compute.SlotWrite{Sent: sent, SlotBytes: 512 << 20, Blocks: int(sent >> 20)}, nil
}

// ArmTrial implements compute.Slots: the committed slot and a slot not completely written are refused.
func (d *Device) ArmTrial(ctx context.Context, host, slot string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.host(ctx, host)
	if err != nil {
		return err
	}
	if err := checkSlot(slot); err != nil {
		return err
	}
	if slot == h.committed {
		return fmt.Errorf("memory: %s: slot %s is committed: a trial is of the other slot", host, slot)
	}
	if c := h.content[slot]; c == "" || c == "partial" {
		return fmt.Errorf("memory: %s: slot %s is not completely written", host, slot)
	}
	h.armed = slot
	return nil
}

// Reboot implements compute.Slots: the device boots the armed slot once, or its committed one; a
// boot that hangs is reset by the watchdog into the committed slot.
func (d *Device) Reboot(ctx context.Context, host string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.host(ctx, host)
	if err != nil {
		return err
	}
	next := h.committed
	if h.armed != "" {
		next, h.armed = h.armed, ""
	}
	h.boots++
	if d.hangs[h.content[next]] {
		h.boots++ // the hung boot, then the watchdog's reset
		next = h.committed
	}
	h.booted = next
	h.down = d.downPolls
	return nil
}

// CommitSlot implements compute.Slots: only the running slot can be committed.
func (d *Device) CommitSlot(ctx context.Context, host, slot string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.host(ctx, host)
	if err != nil {
		return err
	}
	if slot != h.booted {
		return fmt.Errorf("memory: %s: slot %s does not run (slot %s does): only the running slot is committed", host, slot, h.booted)
	}
	h.committed = slot
	return nil
}

// Launch implements compute.Provider: a device is not launched.
func (d *Device) Launch(_ context.Context, spec compute.Spec) (compute.Instance, error) {
	return compute.Instance{}, fmt.Errorf("memory: %q: a device is not launched", spec.Name)
}

// Terminate implements compute.Provider: a slot is not destroyed.
func (d *Device) Terminate(_ context.Context, id string) error {
	return fmt.Errorf("memory: %q is a slot of a device: it is never destroyed", id)
}

// Instances implements compute.Provider as the device provider does: each host's two slots, labelled
// host, slot, committed and running; the running one is Running.
func (d *Device) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	var out []compute.Instance
	for _, name := range d.order {
		h := d.hosts[name]
		for _, s := range []string{"a", "b"} {
			labels := map[string]string{"host": name, "slot": s,
				"committed": strconv.FormatBool(s == h.committed), "running": strconv.FormatBool(s == h.booted)}
			if !sel.Matches(labels) {
				continue
			}
			state := compute.Stopped
			if s == h.booted {
				state = compute.Running
			}
			out = append(out, compute.Instance{ID: name + "/" + s, Name: name + " slot " + s, Labels: labels, State: state, Address: h.addr})
		}
	}
	return out, nil
}
