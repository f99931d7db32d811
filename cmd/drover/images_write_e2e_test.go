//go:build e2e && lab

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EImagesWriteLoopDevice writes a card to real block devices: loop devices this test makes
// (the kernel calls them fixed media) and removes. The refusals a real device can show are shown:
// fixed media without --force, a device that is not there, a mounted device; the forced write
// reads back.
func TestE2EImagesWriteLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("loop devices need root")
	}
	state := t.TempDir()
	card := seedCard(t, state, "")
	loop := losetup(t, 64<<20)

	code, _, stderr := drover(t, nil, "--state", state, "images", "write", "pi", loop)
	if code == 0 || !strings.Contains(stderr, "not removable") || !strings.Contains(stderr, "--force") {
		t.Errorf("fixed media without --force: exit %d\n%s", code, stderr)
	}

	start := time.Now()
	code, stdout, stderr := drover(t, nil, "--state", state, "images", "write", "--force", "pi", loop)
	if code != 0 || !strings.Contains(stdout, "read it back") || !strings.Contains(stderr, "(100%") {
		t.Fatalf("forced write to %s: exit %d\n%s%s", loop, code, stdout, stderr)
	}
	t.Logf("wrote and verified %d bytes on %s in %s", len(card), loop, time.Since(start).Round(time.Millisecond))
	f, err := os.Open(loop)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(card))
	_, err = io.ReadFull(f, got)
	f.Close()
	if err != nil || !bytes.Equal(got, card) {
		t.Errorf("%s does not hold the card: %v", loop, err)
	}

	// A device that is not there is refused, not made a file in /dev. (A partition is refused too:
	// TestWriteTargetChecks shows it on a fake sysfs; loop devices get no partitions here.)
	if code, _, stderr := drover(t, nil, "--state", state, "images", "write", "--force", "pi", loop+"p9"); code == 0 ||
		!strings.Contains(stderr, "no such device") || fileExists(loop+"p9") {
		t.Errorf("a missing device: exit %d\n%s", code, stderr)
	}

	// A mounted device is refused even with --force.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", loop).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", loop, err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", loop, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", loop, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	if code, _, stderr := drover(t, nil, "--state", state, "images", "write", "--force", "pi", loop); code == 0 ||
		!strings.Contains(stderr, "is mounted") || !strings.Contains(stderr, mnt) {
		t.Errorf("a mounted device: exit %d\n%s", code, stderr)
	}
}

// losetup attaches a fresh file of size bytes as a loop device, partitioned by the sfdisk script
// and detaches it when the test ends.
func losetup(t *testing.T, size int64) string {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(backing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "--detach", dev).Run() })
	return dev
}
