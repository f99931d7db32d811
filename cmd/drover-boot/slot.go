package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/drover-dev/drover/internal/abslot"
)

// `drover-boot slot ...` is the device's side of an A/B update of a Raspberry Pi card, run by drover
// over SSH (the device compute provider):
//
//	drover-boot slot status           the card's slots as JSON: committed, running, on trial
//	drover-boot slot write SLOT       receive the blocks of SLOT that differ from the bundle, write,
//	                                  verify (the protocol is internal/abslot's proto.go, on stdin/stdout)
//	drover-boot slot trial SLOT       arm a one-time trial boot of SLOT (autoboot.txt's [tryboot], then
//	                                  the firmware mailbox, or its stand-in port without /dev/vcio)
//	drover-boot slot commit SLOT      make the running SLOT the one a normal boot starts
//	drover-boot slot reboot           reboot (systemctl reboot)
//
// The card is the disk of the running root. Overrides, for tests and an emulated Pi, from the
// environment: DROVER_BOOT_DISK (the card, a block device or an image file), DROVER_BOOT_CMDLINE
// (a file in place of /proc/cmdline), DROVER_BOOT_VCIO (the mailbox device), DROVER_BOOT_TRYBOOT_PORT
// (the stand-in port) and DROVER_BOOT_REBOOT_FILE (a reboot only writes this file, for a test to
// play the firmware's part).
func slotMain(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	d := abslot.Device{Disk: getenv("DROVER_BOOT_DISK"), Cmdline: getenv("DROVER_BOOT_CMDLINE"),
		VCIO: getenv("DROVER_BOOT_VCIO"), TrybootPort: getenv("DROVER_BOOT_TRYBOOT_PORT")}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "drover-boot: slot: %v\n", err)
		return exitFailed
	}
	usage := func() int {
		fmt.Fprintln(stderr, "usage: drover-boot slot status | write SLOT | trial SLOT | commit SLOT | reboot")
		return exitUsage
	}
	if len(args) == 0 {
		return usage()
	}
	withSlot := len(args) == 2 && (args[1] == "a" || args[1] == "b")
	switch {
	case args[0] == "status" && len(args) == 1:
		st, err := d.Status()
		if err != nil {
			return fail(err)
		}
		if err := json.NewEncoder(stdout).Encode(st); err != nil {
			return fail(err)
		}
	case args[0] == "write" && withSlot:
		if err := d.Receive(args[1], stdin, stdout); err != nil {
			return fail(err)
		}
	case args[0] == "trial" && withSlot:
		if err := d.Trial(args[1]); err != nil {
			return fail(err)
		}
	case args[0] == "commit" && withSlot:
		if err := d.Commit(args[1]); err != nil {
			return fail(err)
		}
	case args[0] == "reboot" && len(args) == 1:
		if f := getenv("DROVER_BOOT_REBOOT_FILE"); f != "" {
			if err := os.WriteFile(f, []byte("reboot\n"), 0o644); err != nil {
				return fail(err)
			}
			return exitOK
		}
		// systemctl returns once the reboot is queued; the SSH session ends with the system.
		if out, err := exec.Command("systemctl", "reboot").CombinedOutput(); err != nil {
			return fail(fmt.Errorf("systemctl reboot: %v: %s", err, out))
		}
	default:
		return usage()
	}
	return exitOK
}
