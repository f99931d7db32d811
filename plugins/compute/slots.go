package compute

import (
	"context"
	"time"
)

// Slots is implemented by providers of devices updated in place rather than replaced: a machine
// with two slots (the Raspberry Pi's A/B card) whose other slot is written, booted once on trial and
// committed. Hosts are the device's addresses as the provider's block names them; slots are "a" and
// "b". Every method is idempotent; none is safe to run concurrently on one host with another that
// changes it (the rollout holds the role's lock).
type Slots interface {
	// SlotStatus says which slot of host is committed and which runs.
	SlotStatus(ctx context.Context, host string) (SlotStatus, error)
	// WriteSlot writes the update bundle in bundleDir into slot of host, sending only the blocks
	// that differ, and verifies the slot's checksums on the device. The running or committed slot
	// is refused. A failure (or a power cut) leaves the slot partly written and never booted;
	// writing again completes it.
	WriteSlot(ctx context.Context, host, slot, bundleDir string) (SlotWrite, error)
	// ArmTrial arms a one-time trial boot of slot at the next reboot; the committed slot is refused.
	ArmTrial(ctx context.Context, host, slot string) error
	// Reboot reboots host; it returns once the reboot is asked for, not once the host is back
	// (SlotStatus answers with a new BootID then).
	Reboot(ctx context.Context, host string) error
	// CommitSlot makes slot, which must be the one running, the one every boot starts.
	CommitSlot(ctx context.Context, host, slot string) error
}

// SlotStatus is a device's slots.
type SlotStatus struct {
	Committed string // the slot a normal boot starts
	Booted    string // the slot running now
	Trial     bool   // Booted is on a one-time trial (it is not Committed)
	BootID    string // the device's ID of its current boot: another one after every boot
}

// SlotWrite is what writing a slot took.
type SlotWrite struct {
	Sent      int64         // bytes sent to the device
	SlotBytes int64         // the bundle's filesystems' size: what a full write would send
	Blocks    int           // blocks sent
	Elapsed   time.Duration // the whole write: hashing on the device, sending, writing, verifying
	Verify    time.Duration // the device's read-back and checksum
}
