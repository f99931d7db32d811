package disk

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
)

// The CPU architectures Assemble makes disks for, by their Debian names.
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
)

// arch is everything about a disk that depends on the CPU architecture it
// boots on; the rest of the disk is the same for every architecture.
type arch struct {
	name string // Debian's name, as in linux-image-NAME
	// efiBinary is the removable-media boot path UEFI firmware tries
	// without any NVRAM boot entry, which a freshly made image never has.
	efiBinary string
	// grubFormat is grub-mkimage's -O; its modules are in grubModules.
	grubFormat  string
	grubModules string
	// grubPackage provides grubModules on a Debian host of any architecture.
	grubPackage string
	// rootType is the "Linux root" partition type for the architecture
	// from the Discoverable Partitions Specification, so tools like
	// systemd-repart know what the partition is.
	rootType string
	// console is the serial console on the kernel command line: where
	// drover and cloud consoles read boot output.
	console string
	// bios says the disk also boots legacy BIOS, through syslinux on the
	// ESP. Only x86 has a BIOS; other architectures boot UEFI only.
	bios bool
	// grubSerial makes GRUB drive the serial port itself. On x86 it is a
	// 16550 GRUB can talk to directly; on arm64 GRUB reaches the UART only
	// through the firmware, whose console GRUB already writes to.
	grubSerial bool
	// peMachine is the PE/COFF machine type of the architecture's EFI
	// binaries, kernels included.
	peMachine uint16
}

var arches = map[string]arch{
	ArchAMD64: {
		name:        ArchAMD64,
		efiBinary:   "EFI/BOOT/BOOTX64.EFI",
		grubFormat:  "x86_64-efi",
		grubModules: "/usr/lib/grub/x86_64-efi",
		grubPackage: "grub-efi-amd64-bin",
		rootType:    "4F68BCE3-E8CD-4C1D-96E7-FBCAF984B709", // Linux root (x86-64)
		console:     "ttyS0,115200n8",
		bios:        true,
		grubSerial:  true,
		peMachine:   0x8664,
	},
	ArchARM64: {
		name:        ArchARM64,
		efiBinary:   "EFI/BOOT/BOOTAA64.EFI",
		grubFormat:  "arm64-efi",
		grubModules: "/usr/lib/grub/arm64-efi",
		grubPackage: hostPackage("grub-efi-arm64-bin", ArchARM64),
		rootType:    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", // Linux root (64-bit ARM/AArch64)
		// ttyAMA0 is the PL011 UART of qemu's virt machine and of most
		// arm64 clouds; AWS Graviton has a 16550, ttyS0, which
		// GetConsoleOutput reads. The kernel writes to each of them that
		// exists, and the last that exists is /dev/console.
		console:   "ttyS0,115200n8 console=ttyAMA0,115200n8",
		peMachine: 0xaa64,
	},
}

// lookupArch finds an architecture by its Debian name; empty means amd64,
// which is what every disk was before Spec.Arch existed.
func lookupArch(name string) (arch, error) {
	if name == "" {
		name = ArchAMD64
	}
	a, ok := arches[name]
	if !ok {
		return arch{}, fmt.Errorf("disk: spec: Arch %q is not one of %s", name, strings.Join(slices.Sorted(maps.Keys(arches)), ", "))
	}
	return a, nil
}

// hostPackage names a Debian package built only for arch so apt can
// install it on this host: on another architecture it is a foreign
// package, pkg:arch, which needs dpkg --add-architecture first. GRUB's
// arm64 modules are such a package; grub-mkimage itself runs on any host.
func hostPackage(pkg, arch string) string {
	if runtime.GOARCH == arch {
		return pkg
	}
	return pkg + ":" + arch
}

// checkKernelArch refuses a kernel built for another architecture than
// the disk's: GRUB would find it and fail to boot it, which shows only
// when the disk is booted. Kernels that boot from UEFI are PE images whose
// header names the machine. A kernel whose header is not recognized
// passes, since the check only guards against a mistake.
func checkKernelArch(path string, a arch) error {
	m, ok, err := kernelMachine(path)
	if err != nil || !ok || m == a.peMachine {
		return err
	}
	other := fmt.Sprintf("PE machine %#04x", m)
	for _, o := range arches {
		if o.peMachine == m {
			other = o.name
		}
	}
	return fmt.Errorf("disk: kernel %s is for %s, not %s: set Spec.Arch to the tree's architecture", path, other, a.name)
}

// kernelMachine reads the PE machine type from a kernel's header, through
// gzip if it is compressed the way Debian ships arm64 kernels.
func kernelMachine(path string) (uint16, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("disk: kernel: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, false, nil
		}
		r = zr
	}
	head := make([]byte, peHeaderMax)
	n, _ := io.ReadFull(r, head)
	m, ok := peMachine(head[:n])
	return m, ok, nil
}

// peHeaderMax is how far into a kernel its PE header is looked for; Linux
// puts it within the first few hundred bytes.
const peHeaderMax = 4096

// peMachine parses the MS-DOS stub's pointer to the PE signature and the
// machine field that follows it.
func peMachine(b []byte) (uint16, bool) {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return 0, false
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if off < 0 || off+6 > len(b) || string(b[off:off+4]) != "PE\x00\x00" {
		return 0, false
	}
	return binary.LittleEndian.Uint16(b[off+4:]), true
}
