package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// hostDevices is blockDevices on the running system, through the usual tools (util-linux's blkid
// and mount, e2fsprogs, xfsprogs, coreutils' chown). Safe for concurrent use; each call is one
// command and leaves what that command leaves on failure.
type hostDevices struct {
	mountinfo string // /proc/self/mountinfo
	sysBlock  string // /sys/block
}

func (hostDevices) Exists(dev string) (bool, error) {
	_, err := os.Stat(dev)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("looking for %s: %w", dev, err)
}

// NVMeBySerial reads the serial of each NVMe namespace's controller in sysfs
// (/sys/block/nvme*/device/serial, what `nvme id-ctrl` shows, space-padded).
func (h hostDevices) NVMeBySerial(serial string) (string, error) {
	names, err := filepath.Glob(filepath.Join(h.sysBlock, "nvme*"))
	if err != nil {
		return "", fmt.Errorf("listing NVMe devices: %w", err)
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(name, "device", "serial"))
		if err != nil {
			continue // gone meanwhile, or not a namespace
		}
		if strings.TrimSpace(string(b)) == serial {
			return "/dev/" + filepath.Base(name), nil
		}
	}
	return "", nil
}

// Rescan writes 1 to /sys/bus/pci/rescan, as an administrator would after a hot-plug the kernel
// did not notice.
func (hostDevices) Rescan() error {
	return os.WriteFile("/sys/bus/pci/rescan", []byte("1"), 0o200)
}

// Probe runs blkid's low-level probe (no cache): exit status 2 means it found nothing.
func (hostDevices) Probe(ctx context.Context, dev string) (string, error) {
	out, err := command(ctx, "blkid", "-p", "-o", "export", dev)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	fsType, err := parseBlkid(out)
	if err != nil {
		return "", fmt.Errorf("%s %w", dev, err)
	}
	return fsType, nil
}

func (hostDevices) MakeFS(ctx context.Context, dev, fsType, label string) error {
	switch fsType {
	case bootdata.FSExt4:
		// -F: a whole disk without partitions is what a volume is; mke2fs would ask otherwise.
		_, err := command(ctx, "mkfs.ext4", "-q", "-F", "-L", label, dev)
		return err
	case bootdata.FSXFS:
		_, err := command(ctx, "mkfs.xfs", "-q", "-L", label, dev)
		return err
	}
	return fmt.Errorf("no mkfs for %q", fsType)
}

// Check runs fsck.ext4 -p: exit status 1 (errors corrected) and 2 (corrected, reboot advised: for
// the root filesystem only) are fine, higher fails. XFS has no check at mount; mounting replays
// its log.
func (hostDevices) Check(ctx context.Context, dev, fsType string) error {
	if fsType != bootdata.FSExt4 {
		return nil
	}
	_, err := command(ctx, "fsck.ext4", "-p", dev)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() <= 2 {
		return nil
	}
	return err
}

func (h hostDevices) MountedFrom(dir string) (string, error) {
	f, err := os.Open(h.mountinfo)
	if err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	return mountedFrom(f, dir)
}

func (hostDevices) Mount(ctx context.Context, dev, dir, fsType string) error {
	_, err := command(ctx, "mount", "-t", fsType, "-o", "nodev,nosuid", dev, dir)
	return err
}

func (hostDevices) Chown(ctx context.Context, dir, owner string) error {
	_, err := command(ctx, "chown", "--", owner, dir)
	return err
}

// mountedFrom finds dir in a mountinfo table (proc(5)) and returns its source, "" when dir is no
// mount point. The last mount on dir is the one that shows.
func mountedFrom(r io.Reader, dir string) (string, error) {
	source := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		before, after, ok := strings.Cut(sc.Text(), " - ")
		fields, rest := strings.Fields(before), strings.Fields(after)
		if !ok || len(fields) < 5 || len(rest) < 2 {
			continue
		}
		if unescapeMountinfo(fields[4]) == dir {
			source = unescapeMountinfo(rest[1])
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	return source, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo's fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// command runs name with args and returns its standard output; a failure names the command and
// carries its standard error's last line.
func command(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg != "" {
			return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return stdout.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}
