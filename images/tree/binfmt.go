package tree

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// binfmtDir is where the kernel's binfmt_misc interface is mounted.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// ensureEmulation makes sure programs of a foreign architecture run, for
// mmdebstrap's package scripts and for later chroot commands: binfmt_misc
// must be mounted and the qemu-user entry for arch enabled, with the F
// (fix binary) flag so that the interpreter works inside a chroot where
// its path does not exist. It mounts and enables what it can and
// otherwise says how to fix the host.
func ensureEmulation(ctx context.Context, arch string, log io.Writer) error {
	if arch == hostArch() {
		return nil
	}
	qemu, ok := qemuName(arch)
	if !ok {
		return fmt.Errorf("unsupported architecture %q", arch)
	}
	entry := "qemu-" + qemu
	fix := fmt.Sprintf("to build %s trees on this %s host, run: apt-get install qemu-user-static binfmt-support && "+
		"mount -t binfmt_misc binfmt_misc %s; update-binfmts --enable %s", arch, hostArch(), binfmtDir, entry)
	if _, err := os.Stat(filepath.Join(binfmtDir, "status")); err != nil {
		fmt.Fprintf(log, "tree: mounting binfmt_misc on %s\n", binfmtDir)
		if err := syscall.Mount("binfmt_misc", binfmtDir, "binfmt_misc", 0, ""); err != nil {
			return fmt.Errorf("binfmt_misc is not mounted and mounting it failed (%w); %s", err, fix)
		}
	}
	enabled, flags := binfmtEntry(filepath.Join(binfmtDir, entry))
	if !enabled {
		bin, err := exec.LookPath("update-binfmts")
		if err != nil {
			return fmt.Errorf("%s emulation (binfmt_misc entry %s) is not enabled and update-binfmts is missing; %s", arch, entry, fix)
		}
		fmt.Fprintf(log, "tree: enabling %s emulation: update-binfmts --enable %s\n", arch, entry)
		if f := run(ctx, command{args: []string{bin, "--enable", entry}, env: []string{"PATH=" + chrootPath}, log: log}); f != nil {
			return fmt.Errorf("%s emulation is not enabled and update-binfmts --enable %s failed (%w: %s); %s",
				arch, entry, f.err, strings.Join(f.tail, " "), fix)
		}
		if enabled, flags = binfmtEntry(filepath.Join(binfmtDir, entry)); !enabled {
			return fmt.Errorf("%s emulation (binfmt_misc entry %s) is still not enabled; %s", arch, entry, fix)
		}
	}
	if !strings.Contains(flags, "F") {
		return fmt.Errorf("binfmt_misc entry %s lacks the F flag, so its interpreter cannot run inside a chroot; "+
			"install qemu-user-static (not only qemu-user) and run update-binfmts --enable %s", entry, entry)
	}
	return nil
}

// binfmtEntry reads a binfmt_misc entry: whether it is enabled, and its
// flags line.
func binfmtEntry(path string) (enabled bool, flags string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, ""
	}
	return parseBinfmtEntry(string(data))
}

func parseBinfmtEntry(data string) (enabled bool, flags string) {
	for _, line := range strings.Split(data, "\n") {
		switch {
		case line == "enabled":
			enabled = true
		case strings.HasPrefix(line, "flags:"):
			flags = strings.TrimSpace(strings.TrimPrefix(line, "flags:"))
		}
	}
	return enabled, flags
}
