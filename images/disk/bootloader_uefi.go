package disk

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// grubEFIModules are linked into the GRUB image. Everything the embedded
// grub.cfg uses is built in, so GRUB never reads modules from disk.
func grubEFIModules() []string {
	return []string{
		"memdisk", "tar", "normal", "configfile", "echo", "test", "sleep",
		"part_gpt", "part_msdos", "fat", "ext2", "search", "search_fs_uuid",
		"linux", "boot", "gzio", "serial", "terminal", "efi_gop",
	}
}

// renderGrubCfg is the whole GRUB configuration: no menu, no timeout, find
// the root filesystem by UUID and boot the tree's own kernel from it.
func renderGrubCfg(a arch, root uuid, k bootFiles, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by drover; embedded in %s.\n", a.efiBinary)
	if a.grubSerial {
		fmt.Fprintf(&b, "serial --unit=0 --speed=115200\n")
		fmt.Fprintf(&b, "terminal_input console serial\n")
		fmt.Fprintf(&b, "terminal_output console serial\n")
	}
	fmt.Fprintf(&b, "search --no-floppy --fs-uuid --set=root %s\n", root)
	fmt.Fprintf(&b, "echo 'drover: booting %s'\n", k.version)
	fmt.Fprintf(&b, "linux /%s %s\n", k.kernel, grubWords(cmdline))
	fmt.Fprintf(&b, "initrd /%s\n", k.initrd)
	fmt.Fprintf(&b, "boot\n")
	return b.String()
}

// memdiskTar packs grub.cfg as GRUB's memdisk. It is built here rather
// than by grub-mkstandalone, whose memdisk carries the build time, so the
// EFI binary is the same on every run.
func memdiskTar(cfg string, epoch time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "boot/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "boot/grub/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "boot/grub/grub.cfg", Mode: 0o644, Size: int64(len(cfg))},
	}
	for _, h := range hdrs {
		h.ModTime = epoch.UTC().Truncate(time.Second)
		h.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("disk: grub memdisk: %w", err)
		}
	}
	if _, err := tw.Write([]byte(cfg)); err != nil {
		return nil, fmt.Errorf("disk: grub memdisk: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("disk: grub memdisk: %w", err)
	}
	return buf.Bytes(), nil
}

// makeGrubEFI builds GRUB for a as one EFI binary in workDir: the modules
// linked in, grub.cfg in a memdisk that is also the prefix. It needs
// nothing from the ESP or the root filesystem but the kernel and initrd.
// grub-mkimage only links modules, so it builds for any architecture
// whose modules are installed, on any host.
func makeGrubEFI(ctx context.Context, a arch, workDir, cfg string, epoch time.Time) (string, error) {
	tarball, err := memdiskTar(cfg, epoch)
	if err != nil {
		return "", err
	}
	memdisk := filepath.Join(workDir, "memdisk.tar")
	if err := os.WriteFile(memdisk, tarball, 0o644); err != nil {
		return "", fmt.Errorf("disk: grub memdisk: %w", err)
	}
	out := filepath.Join(workDir, path.Base(a.efiBinary))
	args := []string{"grub-mkimage", "-O", a.grubFormat, "-d", a.grubModules, "-o", out,
		"-p", "(memdisk)/boot/grub", "-m", memdisk}
	_, err = run(ctx, command{step: "uefi bootloader", args: append(args, grubEFIModules()...)})
	return out, err
}
