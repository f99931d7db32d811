package disk

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	// gptMBRPath is syslinux's MBR boot code for GPT disks (syslinux-common).
	// It chains to the volume boot record of the partition marked
	// LegacyBIOSBootable, which is the ESP with syslinux in it.
	gptMBRPath = "/usr/lib/syslinux/mbr/gptmbr.bin"
	// mbrCodeSize is the boot code area of the MBR; the disk signature and
	// the protective MBR partition entry follow it and must stay intact.
	mbrCodeSize = 440

	// syslinuxDir holds ldlinux.sys, ldlinux.c32 and syslinux.cfg on the ESP.
	syslinuxDir = "syslinux"
	// espLinuxDir holds the kernel and initrd for BIOS boot: syslinux can
	// only read the filesystem it is installed on, not the ext4 root.
	espLinuxDir = "linux"
)

// espKernel and espInitrd are where BIOS boot finds the kernel on the ESP.
func espKernel(k bootFiles) string { return espLinuxDir + "/vmlinuz-" + k.version }
func espInitrd(k bootFiles) string { return espLinuxDir + "/initrd.img-" + k.version }

// renderSyslinuxCfg boots the one kernel at once, with syslinux's own
// output on the first serial port too.
func renderSyslinuxCfg(k bootFiles, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by drover.\n")
	fmt.Fprintf(&b, "SERIAL 0 115200\n")
	fmt.Fprintf(&b, "DEFAULT drover\n")
	fmt.Fprintf(&b, "PROMPT 0\n")
	fmt.Fprintf(&b, "TIMEOUT 0\n\n")
	fmt.Fprintf(&b, "LABEL drover\n")
	fmt.Fprintf(&b, "  LINUX /%s\n", espKernel(k))
	fmt.Fprintf(&b, "  INITRD /%s\n", espInitrd(k))
	fmt.Fprintf(&b, "  APPEND %s\n", cmdline)
	return b.String()
}

// installSyslinux writes syslinux's boot sector and ldlinux.sys/ldlinux.c32
// into the FAT image through mtools: no mount, no root.
func installSyslinux(ctx context.Context, espImage string, env []string) error {
	if err := mtools(ctx, "bios bootloader", env, "mmd", "-i", espImage, "::/"+syslinuxDir); err != nil {
		return err
	}
	_, err := run(ctx, command{
		step: "bios bootloader",
		args: []string{"syslinux", "--install", "--directory", "/" + syslinuxDir, espImage},
		env:  env,
	})
	return err
}

// writeGPTMBR puts gptmbr.bin's boot code into the disk's first 440 bytes,
// leaving the protective MBR sfdisk wrote in place.
func writeGPTMBR(diskPath string) error {
	code, err := readMBRCode(gptMBRPath)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(diskPath, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("disk: bios boot code: %w", err)
	}
	if _, err := f.WriteAt(code, 0); err != nil {
		f.Close()
		return fmt.Errorf("disk: bios boot code: %w", err)
	}
	return f.Close()
}

// readMBRCode reads an MBR boot code file, which must fit in 440 bytes.
func readMBRCode(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("disk: bios boot code: %w (apt-get install syslinux-common)", err)
	}
	defer f.Close()
	code, err := io.ReadAll(io.LimitReader(f, mbrCodeSize+1))
	if err != nil {
		return nil, fmt.Errorf("disk: bios boot code: %w", err)
	}
	if len(code) > mbrCodeSize {
		return nil, fmt.Errorf("disk: bios boot code: %s is larger than %d bytes", path, mbrCodeSize)
	}
	return code, nil
}
