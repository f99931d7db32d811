package disk

import (
	"fmt"
	"strings"
)

// kernelCmdline is what the bootloaders pass to the kernel. The root is
// found by filesystem UUID, which survives a disk being attached as vda,
// sda or nvme0n1. It is mounted rw because an image has no separate
// remount step it can rely on (its /etc/fstab is the tree's business).
// The serial console (ttyS0 on amd64; ttyAMA0 on arm64, after Graviton's
// ttyS0) comes last so it is /dev/console: the serial log is where drover
// and cloud consoles read boot output.
func (a arch) kernelCmdline(root uuid, extra string) string {
	s := "root=UUID=" + root.String() + " rw console=tty0 console=" + a.console
	if extra = strings.TrimSpace(extra); extra != "" {
		s += " " + extra
	}
	return s
}

// checkCmdline rejects what cannot be written into a one-line bootloader
// config.
func checkCmdline(extra string) error {
	if strings.ContainsAny(extra, "\n\r\x00") {
		return fmt.Errorf("disk: kernel command line %q has a line break or NUL", extra)
	}
	return nil
}

// grubWords quotes each word of a kernel command line for grub.cfg, where
// $, ;, quotes and the like would otherwise be GRUB script syntax. GRUB
// removes the quotes, so the kernel sees the words as written.
func grubWords(cmdline string) string {
	words := strings.Fields(cmdline)
	for i, w := range words {
		if strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:=/+@") != "" {
			words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(words, " ")
}
