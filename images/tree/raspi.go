package tree

import (
	"slices"
	"strings"
)

// RaspiFirmwarePackage is Debian's package of the Raspberry Pi's GPU firmware (bootcode.bin,
// start*.elf, fixup*.dat) and of the kernel hooks that copy the kernel, initramfs and device trees
// next to it in /boot/firmware. A tree whose packages include it is built with raspiHooks.
const RaspiFirmwarePackage = "raspi-firmware"

// raspiInitramfsModules are what the initramfs of a Pi tree adds to initramfsModules to find
// its root on the SD card: the Pi's two SD controllers (sdhost, the bcm2835 module, and the Arasan
// SDHCI, sdhci_iproc; qemu's raspi3b has both), the DMA engine sdhost waits for, and the MMC block
// layer.
var raspiInitramfsModules = []string{"bcm2835_dma", "bcm2835", "sdhci", "sdhci_pltfm", "sdhci_iproc", "mmc_block"}

// raspiDefaults is /etc/default/raspi-firmware as the tree has it before raspi-firmware is
// installed: in a chroot its hooks cannot find the root or the console by themselves. The card
// writes each slot's own cmdline.txt; this one only has to be well formed. It has no single quote:
// a hook prints it inside one.
const raspiDefaults = `# Written by drover: on the card, each slot has a cmdline.txt that names the root of that slot.
ROOTPART=LABEL=root-a
CONSOLES="ttyS1,115200 tty0"
`

// isRaspi reports whether the (normalized) spec installs the Pi's firmware.
func (s BaseSpec) isRaspi() bool {
	return slices.ContainsFunc(s.Packages, func(p string) bool {
		return p == RaspiFirmwarePackage || strings.HasPrefix(p, RaspiFirmwarePackage+":") ||
			strings.HasPrefix(p, RaspiFirmwarePackage+"=") || strings.HasPrefix(p, RaspiFirmwarePackage+"/")
	})
}

// raspiKey is what raspiHooks add to a tree's Key: changing them makes a new tree.
func raspiKey() string {
	return "raspi=" + strings.Join(raspiInitramfsModules, ",") + "|" + strings.ReplaceAll(raspiDefaults, "\n", "|") + "|divert-update-initramfs\n"
}

// raspiHooks prepare a tree for raspi-firmware: its defaults (kept by dpkg's force-confold, which is
// taken out of the tree's dpkg configuration again at the end) and the SD modules in the initramfs.
// Every tree makes its one initramfs at the end (initramfsOnceHooks); raspi-firmware's post-update
// hook copies it to /boot/firmware.
func raspiHooks() []string {
	return []string{
		"--dpkgopt=force-confold",
		`--essential-hook=mkdir -p "$1/etc/default" "$1/usr/share/initramfs-tools/modules.d"`,
		`--essential-hook=printf '%s' '` + raspiDefaults + `' > "$1/etc/default/raspi-firmware"`,
		`--essential-hook=printf '%s\n' ` + strings.Join(raspiInitramfsModules, " ") + ` > "$1/usr/share/initramfs-tools/modules.d/drover-raspi"`,
		`--customize-hook=sed -i "/force-confold/d" "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"`,
	}
}
