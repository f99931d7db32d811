package tree

import "strings"

// The hooks below make a cold base tree cheaper without changing what the image is for: it still
// has merged /usr, every package of its set configured, one initramfs made from the finished tree
// with the modules a VM or the Pi needs, and no documentation but copyright files. bench/buildbench -vsmkosi measures them against mkosi (bench/results.md, issue 19).

// mergedUsrHookDir is mmdebstrap's hook that sets merged /usr up the way debootstrap does (the
// /bin, /sbin and /lib symlinks into /usr made before anything is unpacked) and installs the
// archive's empty usr-is-merged package. Without it, init-system-helpers' "usrmerge |
// usr-is-merged" brings in usrmerge, which needs the whole of perl (about 47 MB of packages to
// download, unpack and keep in every image) and converts the tree after the fact.
const mergedUsrHookDir = "/usr/share/mmdebstrap/hooks/merged-usr"

// mergedUsrOpts are the mmdebstrap options that give suite merged /usr through mergedUsrHookDir,
// for the suites whose archive has usr-is-merged (bookworm and later). Older suites build as
// before: their archives have no usr-is-merged, which the hook's essential step installs.
func mergedUsrOpts(suite string) []string {
	switch suite {
	case "jessie", "stretch", "buster", "bullseye":
		return nil
	}
	return []string{"--hook-dir=" + mergedUsrHookDir}
}

// initramfsOnceHooks defer every initramfs to one made at the end. While packages install,
// update-initramfs is diverted to a no-op: the kernel's postinst would make one, and the
// update-initramfs trigger of initramfs-tools (pulled by udev, systemd, busybox and the kernel
// itself) makes it again, each run of mkinitramfs copying and compressing some thousand modules
// (minutes under load on two cores). The last customize hooks restore it and make the one
// initramfs for every installed kernel, from the finished tree, which is what the last of those
// runs would have made. A tree without initramfs-tools gets the divert added and removed and nothing
// else.
func initramfsOnceHooks() []string {
	return []string{
		`--essential-hook=chroot "$1" dpkg-divert --local --rename --add /usr/sbin/update-initramfs`,
		`--essential-hook=printf '#!/bin/sh\nexit 0\n' > "$1/usr/sbin/update-initramfs" && chmod 755 "$1/usr/sbin/update-initramfs"`,
		`--customize-hook=rm -f "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --local --rename --remove /usr/sbin/update-initramfs`,
		`--customize-hook=if [ -x "$1/usr/sbin/update-initramfs" ]; then chroot "$1" update-initramfs -c -k all; fi`,
	}
}

// initramfsModules are the only modules the initramfs of a tree holds (MODULES=list): what a VM or
// cloud instance needs to find its root disk (virtio on qemu and most clouds, NVMe on AWS's Nitro
// instances, SCSI disks) and mount it (ext4, with the crc32c it needs, which initramfs-tools adds
// itself), and its NIC (virtio, ENA on AWS). On amd64 also Xen's front ends, for AWS's older
// instance types, and AHCI, for a VM whose disk is on a SATA controller. Debian's default,
// MODULES=most, copies every storage and filesystem module: a 36 MB initramfs that took 61 s of a
// cold amd64 tree's 173 s here (5.5 s and 7 MB for this list; bench/results.md), and under qemu-user,
// where every command mkinitramfs runs is emulated, over 20 minutes of an arm64 tree. drover's
// images boot VMs and the Pi (whose tree adds its SD modules, raspiInitramfsModules); a role for
// other hardware adds its modules to /etc/initramfs-tools/modules and runs update-initramfs -u in
// its image block's run.
func initramfsModules(arch string) []string {
	mods := []string{"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "virtio_net", "ena", "sd_mod", "nvme", "ext4"}
	if arch == "amd64" {
		mods = append(mods, "xen_blkfront", "xen_netfront", "ahci")
	}
	return mods
}

// initramfsModuleHooks write the initramfs-tools configuration that builds the initramfs from
// initramfsModules, before the kernel is installed. The files stay in the image, so the instance
// builds the same initramfs if it ever rebuilds it.
func initramfsModuleHooks(arch string) []string {
	return []string{
		`--essential-hook=mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"`,
		`--essential-hook=echo MODULES=list > "$1/etc/initramfs-tools/conf.d/drover-modules"`,
		`--essential-hook=printf '%s\n' ` + strings.Join(initramfsModules(arch), " ") + ` > "$1/usr/share/initramfs-tools/modules.d/drover"`,
	}
}

// dpkgOpts make the bootstrap cheaper without changing what runs: dpkg skips its fsyncs (a build
// that dies is thrown away whole, so durability buys nothing; on a slow disk the fsyncs dominate),
// and man pages, info pages and documentation other than copyright files are not unpacked, as in
// Debian's own container images. mmdebstrap keeps dpkg options in the tree; the unsafe-io one is
// taken out again so the image's own dpkg is safe, the path filters stay for the image's apt.
//
// The path filters are written by an extract hook rather than given as --dpkgopt: with them in its
// dpkg configuration before the essential packages are extracted, mmdebstrap pipes every one of
// them through mmtarfilter, a Python script, which took 38 s of a 98 s cold tree here (with the
// module list). Extracted unfiltered (4-5 s), the same hook then deletes the files the filters
// exclude, before dpkg installs those packages with the filters in force.
func dpkgOpts() []string {
	hooks := []string{"--dpkgopt=force-unsafe-io"}
	var lines []string
	for _, f := range docPathFilters {
		lines = append(lines, "'"+f+"'")
	}
	hooks = append(hooks,
		`--extract-hook=printf '%s\n' `+strings.Join(lines, " ")+` >> "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"`,
		`--extract-hook=for d in man info doc; do if [ -d "$1/usr/share/$d" ]; then find "$1/usr/share/$d" -type f ! -path "$1/usr/share/doc/*/copyright" -delete; fi; done`,
		`--customize-hook=sed -i "/force-unsafe-io/d" "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"`,
	)
	return hooks
}

// docPathFilters are dpkg's path filters that leave documentation out of a tree, copyright files
// kept.
var docPathFilters = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
}
