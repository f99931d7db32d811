package abslot

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The firmware's property mailbox, as /dev/vcio exposes it (the kernel's vcio driver, used by the
// vcmailbox tool): one ioctl with a buffer of 32-bit words. Tag 0x00038064 sets the reboot flags;
// flag 1 makes the next reboot a tryboot, which the firmware clears as it uses it. This is what
// `vcmailbox 0x00038064 4 0 1` does; Debian's kernel does not set it from `reboot "0 tryboot"`.
const (
	tagSetRebootFlags = 0x00038064
	rebootFlagTryboot = 1
	// ioctlMboxProperty is _IOWR(100, 0, char *) on a 64-bit kernel.
	ioctlMboxProperty = 0xc0086400
)

// trybootMessage is the mailbox buffer that arms a tryboot: size, request code, the tag (id, value
// buffer size, request indicator, value), end tag.
func trybootMessage() []uint32 {
	return []uint32{7 * 4, 0, tagSetRebootFlags, 4, 0, rebootFlagTryboot, 0}
}

func mailboxTryboot(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("abslot: opening the firmware mailbox: %w", err)
	}
	defer f.Close()
	msg := trybootMessage()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ioctlMboxProperty, uintptr(unsafe.Pointer(&msg[0]))); errno != 0 {
		return fmt.Errorf("abslot: the firmware mailbox refused the tryboot flag: %w", errno)
	}
	if msg[1] != 0x80000000 {
		return fmt.Errorf("abslot: the firmware answered the tryboot flag with code %#x, not success (0x80000000)", msg[1])
	}
	return nil
}
