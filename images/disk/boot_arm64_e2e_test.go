//go:build e2e && e2earm64

package disk_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk"
	"github.com/drover-dev/drover/images/disk/disktest"
)

const (
	// aavmfPath is EDK2's firmware for qemu's arm64 virt machine
	// (qemu-efi-aarch64).
	aavmfPath = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	// arm64BootDeadline is how long an arm64 boot may take to reach
	// login:. Every arm64 instruction is emulated (TCG), on a machine
	// that may be busy with other builds, so it is far longer than
	// amd64's.
	arm64BootDeadline = 10 * time.Minute
)

// TestBootARM64E2E builds a disk from a real bookworm arm64 tree, made
// through qemu-user, and boots it under UEFI on an emulated arm64 virt
// machine.
func TestBootARM64E2E(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
		t.Fatal("qemu-system-aarch64 not found (apt-get install qemu-system-arm qemu-efi-aarch64)")
	}
	if _, err := os.Stat(aavmfPath); err != nil {
		t.Fatalf("%v (apt-get install qemu-efi-aarch64)", err)
	}
	start := time.Now()
	tree := disktest.BaseTreeArch(t, disk.ArchARM64)
	t.Logf("arm64 tree ready in %s", time.Since(start).Round(time.Second))
	dir := t.TempDir()
	spec := disk.Spec{
		Arch:            disk.ArchARM64,
		Tree:            tree,
		Output:          filepath.Join(dir, "disk.raw"),
		RootUUID:        e2eRootUUID,
		ESPSerial:       "D20E-00A6",
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
		log := bootARM64ToLogin(t, res.Path)
		mustContain(t, log, "drover: booting "+res.KernelVersion) // GRUB's echo
		mustContain(t, log, "console=ttyAMA0")
		// GRUB carries on past a config line it cannot run, saying error:.
		grub, _, _ := strings.Cut(log, "EFI stub: ")
		if strings.Contains(grub, "error:") {
			t.Errorf("GRUB reported an error:\n%s", grub)
		}
	})
}

// kernelCmdlineLine is how the arm64 kernel prints its command line early
// in boot.
var kernelCmdlineLine = regexp.MustCompile(`Kernel command line: .*root=UUID=` + e2eRootUUID + `.*`)

// bootARM64ToLogin boots raw on qemu's arm64 virt machine (TCG, UEFI, no
// network, writes discarded) and waits until the serial console shows a
// login prompt. It returns the serial log.
func bootARM64ToLogin(t *testing.T, raw string) string {
	t.Helper()
	serial := filepath.Join(t.TempDir(), "serial.log")
	cmd := exec.Command("qemu-system-aarch64",
		"-M", "virt", "-cpu", "cortex-a57", "-accel", "tcg", "-m", "1024",
		"-nographic", "-monitor", "none", "-serial", "file:"+serial,
		"-bios", aavmfPath, "-nic", "none", "-no-reboot",
		"-drive", "file="+raw+",format=raw,if=virtio,snapshot=on")
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
	deadline := time.After(arm64BootDeadline)
	var grubAt, kernelAt time.Duration
	for {
		log, _ := os.ReadFile(serial)
		if grubAt == 0 && bytes.Contains(log, []byte("drover: booting")) {
			grubAt = time.Since(start)
		}
		if kernelAt == 0 && kernelCmdlineLine.Match(log) {
			kernelAt = time.Since(start)
		}
		if bytes.Contains(log, []byte("login:")) {
			t.Logf("GRUB after %s, kernel command line after %s, login prompt after %s; serial console excerpts:\n    | %s\n%s",
				grubAt.Round(time.Second), kernelAt.Round(time.Second), time.Since(start).Round(time.Second),
				kernelCmdlineLine.Find(log), excerpts(string(log)))
			mustContain(t, string(log), "root=UUID="+e2eRootUUID)
			return string(log)
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qemu exited before login: (%v) %s\nserial log:\n%s", err, qemuOut.String(), lastLines(string(log), 60))
		case <-deadline:
			t.Fatalf("no login: on the serial console after %s (GRUB reached: %v, kernel command line printed: %v)\nserial log:\n%s",
				arm64BootDeadline, grubAt != 0, kernelAt != 0, lastLines(string(log), 60))
		case <-time.After(time.Second):
		}
	}
}
