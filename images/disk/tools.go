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

// RequiredTools lists what Assemble and ToQcow2 run or read for an amd64
// disk, the default.
func RequiredTools() []Tool {
	tools, _ := RequiredToolsArch(ArchAMD64)
	return tools
}

// RequiredToolsArch lists what Assemble and ToQcow2 run or read for a disk
// of the architecture arch (as in Spec.Arch), on this host.
func RequiredToolsArch(arch string) ([]Tool, error) {
	a, err := lookupArch(arch)
	if err != nil {
		return nil, err
	}
	return append(a.assembleTools(), Tool{"qemu-img", "qemu-utils"}), nil
}

// assembleTools lists what Assemble runs or reads: the filesystem tools,
// GRUB for the architecture and, where the disk boots BIOS, syslinux.
func (a arch) assembleTools() []Tool {
	tools := []Tool{
		{"sfdisk", "fdisk"},
		{"mkfs.ext4", "e2fsprogs"},
		{"debugfs", "e2fsprogs"},
		{"mkfs.vfat", "dosfstools"},
		{"mmd", "mtools"},
		{"mcopy", "mtools"},
	}
	if a.bios {
		tools = append(tools, Tool{"syslinux", "syslinux"}, Tool{gptMBRPath, "syslinux-common"})
	}
	return append(tools,
		Tool{"grub-mkimage", "grub-common"},
		Tool{a.grubModules + "/linux.mod", a.grubPackage},
	)
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
	return fmt.Errorf("disk: missing %s (%s)", strings.Join(missing, ", "), installHint(uniq(pkgs)))
}

// installHint is the command that installs pkgs. A package qualified with
// a foreign architecture (pkg:arm64) needs that architecture added to dpkg
// first, or apt cannot find it at all.
func installHint(pkgs []string) string {
	var steps []string
	for _, p := range pkgs {
		if _, a, ok := strings.Cut(p, ":"); ok {
			steps = append(steps, "dpkg --add-architecture "+a)
		}
	}
	if steps = uniq(steps); len(steps) > 0 {
		steps = append(steps, "apt-get update")
	}
	return strings.Join(append(steps, "apt-get install "+strings.Join(pkgs, " ")), " && ")
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
