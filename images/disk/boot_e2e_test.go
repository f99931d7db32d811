//go:build e2e

package disk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk"
	"github.com/drover-dev/drover/images/disk/disktest"
)

const (
	e2eRootUUID = "5b9a3c7e-1d2f-4e6a-8b0c-9d8e7f6a5b4c"
	ovmfPath    = "/usr/share/ovmf/OVMF.fd"
	// bootDeadline is how long a TCG boot may take to reach login:.
	bootDeadline = 120 * time.Second
)

// TestBootE2E builds a disk from a real bookworm tree and boots it under
// UEFI and BIOS with qemu, without KVM.
func TestBootE2E(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (apt-get install qemu-system-x86 qemu-utils ovmf)", tool)
		}
	}
	tree := disktest.BaseTree(t)
	dir := t.TempDir()
	spec := disk.Spec{
		Tree:            tree,
		Output:          filepath.Join(dir, "disk.raw"),
		RootUUID:        e2eRootUUID,
		ESPSerial:       "D20E-0001",
		KernelCmdline:   "systemd.show_status=1",
		SourceDateEpoch: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	}
	res := assemble(t, spec)

	t.Run("reproducible", func(t *testing.T) {
		again := spec
		again.Output = filepath.Join(dir, "again.raw")
		res2 := assemble(t, again)
		defer os.Remove(res2.Path)
		if res2.SHA256 != res.SHA256 {
			t.Errorf("same tree and spec, different disks: %s vs %s", res.SHA256, res2.SHA256)
		}
	})
	t.Run("uefi", func(t *testing.T) {
		log := bootToLogin(t, res.Path, "-bios", ovmfPath)
		mustContain(t, log, "drover: booting "+res.KernelVersion) // GRUB's echo
	})
	t.Run("bios", func(t *testing.T) {
		log := bootToLogin(t, res.Path)
		mustContain(t, log, "SYSLINUX") // syslinux's banner on the serial port
	})
	t.Run("qcow2", func(t *testing.T) {
		out := filepath.Join(dir, "disk.qcow2")
		start := time.Now()
		if err := disk.ToQcow2(context.Background(), res.Path, out, disk.Compressed()); err != nil {
			t.Fatal(err)
		}
		info := imageInfo(t, out)
		if info.Format != "qcow2" || info.VirtualSize != res.Size {
			t.Errorf("qemu-img info: %+v, want qcow2 of %d bytes", info, res.Size)
		}
		t.Logf("qcow2 (compressed): %d MiB on disk in %s", info.ActualSize>>20, time.Since(start).Round(time.Millisecond))
	})
}

func assemble(t *testing.T, spec disk.Spec) disk.Result {
	t.Helper()
	start := time.Now()
	res, err := disk.Assemble(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	allocated := allocatedBytes(t, res.Path)
	t.Logf("assembled in %s: kernel %s, disk %d MiB (%d MiB allocated), ESP %d MiB, root %d MiB, sha256 %s",
		time.Since(start).Round(time.Millisecond), res.KernelVersion, res.Size>>20, allocated>>20,
		res.ESPSize>>20, res.RootSize>>20, res.SHA256)
	return res
}

// bootToLogin boots raw in qemu (TCG, no network, writes discarded) and
// waits until the serial console shows a login prompt. It returns the
// serial log.
func bootToLogin(t *testing.T, raw string, firmware ...string) string {
	t.Helper()
	serial := filepath.Join(t.TempDir(), "serial.log")
	args := append([]string{
		"-accel", "tcg", "-m", "1024", "-nographic", "-monitor", "none",
		"-serial", "file:" + serial, "-nic", "none", "-no-reboot",
		"-drive", "file=" + raw + ",format=raw,if=virtio,snapshot=on",
	}, firmware...)
	cmd := exec.Command("qemu-system-x86_64", args...)
	var qemuOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID; harmless if it already exited
		<-exited
	})
	deadline := time.After(bootDeadline)
	for {
		log, _ := os.ReadFile(serial)
		if bytes.Contains(log, []byte("login:")) {
			t.Logf("login prompt after %s; serial console excerpts:\n%s", time.Since(start).Round(100*time.Millisecond), excerpts(string(log)))
			mustContain(t, string(log), "root=UUID="+e2eRootUUID)
			return string(log)
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qemu exited before login: (%v) %s\nserial log:\n%s", err, qemuOut.String(), lastLines(string(log), 60))
		case <-deadline:
			t.Fatalf("no login: on the serial console after %s\nserial log:\n%s", bootDeadline, lastLines(string(log), 60))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// excerpts picks the serial log lines that show which path the boot took.
func excerpts(log string) string {
	var keep []string
	for _, line := range strings.Split(log, "\n") {
		for _, mark := range []string{"SYSLINUX", "drover: booting", "Command line:", "EFI v", "login:"} {
			if strings.Contains(line, mark) {
				keep = append(keep, "    | "+strings.TrimSpace(line))
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}

func mustContain(t *testing.T, log, want string) {
	t.Helper()
	if !strings.Contains(log, want) {
		t.Errorf("serial log lacks %q:\n%s", want, lastLines(log, 60))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type imgInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ActualSize  int64  `json:"actual-size"`
}

func imageInfo(t *testing.T, path string) imgInfo {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info imgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// allocatedBytes is how much of a sparse file is really on disk.
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
