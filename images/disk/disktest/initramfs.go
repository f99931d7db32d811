package disktest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// initramfsModules are the only modules a small initramfs gets: enough to
// mount an ext4 root from virtio (qemu and most clouds) or NVMe; ext4's
// metadata checksums need crc32c.
var initramfsModules = []string{"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "nvme", "ext4", "crc32c_generic"}

// slimInitramfs says whether arch's trees get a small initramfs. Under
// qemu-user, mkinitramfs with Debian's MODULES=most runs a few emulated
// processes for each of thousands of modules: more than half an hour for
// arm64 on a busy 2-core machine. Native trees keep Debian's default.
func slimInitramfs(arch string) bool { return arch != runtime.GOARCH }

// slimInitramfsHooks writes an initramfs-tools config (MODULES=list) and a
// hook adding initramfsModules into dir, and returns the mmdebstrap
// options that put them in the tree before any package is installed, so
// the kernel's postinst builds the small initramfs.
func slimInitramfsHooks(dir string) ([]string, error) {
	conf := filepath.Join(dir, "initramfs.conf")
	hook := filepath.Join(dir, "initramfs-hook")
	if err := os.WriteFile(conf, []byte("# Written by drover's disktest.\nMODULES=list\n"), 0o644); err != nil {
		return nil, err
	}
	script := "#!/bin/sh\n# Written by drover's disktest: what a virtio or NVMe ext4 root needs.\n" +
		"[ \"$1\" = prereqs ] && exit 0\n" +
		". /usr/share/initramfs-tools/hook-functions\n" +
		"manual_add_modules " + strings.Join(initramfsModules, " ") + "\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		return nil, err
	}
	install := func(mode, src, dst string) string {
		return fmt.Sprintf(`--setup-hook=install -D -m %s '%s' "$1%s"`, mode, src, dst)
	}
	return []string{
		install("0644", conf, "/etc/initramfs-tools/conf.d/drover-test"),
		install("0755", hook, "/etc/initramfs-tools/hooks/drover-test"),
	}, nil
}
