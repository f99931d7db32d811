package disk

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Tool is a program or file Assemble needs, with the Debian package that
// provides it, so drover doctor and errors can say what to install.
type Tool struct {
	Name    string // a command looked up in PATH, or an absolute file path
	Package string
}

// RequiredTools lists what Assemble and ToQcow2 run or read.
func RequiredTools() []Tool {
	return append(assembleTools(), Tool{"qemu-img", "qemu-utils"})
}

// assembleTools lists what Assemble runs or reads.
func assembleTools() []Tool {
	return []Tool{
		{"sfdisk", "fdisk"},
		{"mkfs.ext4", "e2fsprogs"},
		{"debugfs", "e2fsprogs"},
		{"mkfs.vfat", "dosfstools"},
		{"mmd", "mtools"},
		{"mcopy", "mtools"},
		{"syslinux", "syslinux"},
		{gptMBRPath, "syslinux-common"},
		{"grub-mkimage", "grub-common"},
		{"/usr/lib/grub/x86_64-efi/linux.mod", "grub-efi-amd64-bin"},
	}
}

// checkTools fails with one error naming every missing tool and the
// packages to install, instead of failing halfway through a build.
func checkTools(tools []Tool) error {
	var missing, pkgs []string
	for _, t := range tools {
		if !toolPresent(t.Name) {
			missing = append(missing, t.Name)
			pkgs = append(pkgs, t.Package)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("disk: missing %s (apt-get install %s)", strings.Join(missing, ", "), strings.Join(uniq(pkgs), " "))
}

func toolPresent(name string) bool {
	if strings.HasPrefix(name, "/") {
		_, err := os.Stat(name)
		return err == nil
	}
	_, err := exec.LookPath(name)
	return err == nil
}

func uniq(s []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
