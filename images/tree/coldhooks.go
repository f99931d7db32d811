package tree

// The hooks below make a cold base tree cheaper without changing what the image is for: it still
// has merged /usr, every package of its set configured, and one initramfs made from the finished
// tree. bench/buildbench -vsmkosi measures them against mkosi (bench/results.md, issue 19).

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
