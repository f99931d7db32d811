//go:build e2e && lab

package vm_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk/disktest"
	"github.com/drover-dev/drover/internal/cloudlab/vm"
)

// TestE2EHotplugVolumes boots the lab image on each platform, hot-plugs a blank raw file as that
// platform presents a volume, sees the guest's kernel find the disk (its console names it), and
// unplugs it again: DetachVolume returns only once the guest released the device, after which
// qemu no longer has it. The three machines boot side by side.
func TestE2EHotplugVolumes(t *testing.T) {
	img := disktest.LabImage(t)
	for i, tc := range []struct {
		platform vm.Platform
		boot     string
		id       string
		kernel   string // what the guest's console says once it has read the disk's partition table
	}{
		{vm.EC2, vm.BootUEFI, "vol0123456789abcdef0", " nvme1n1: p1"},
		{vm.Vultr, vm.BootUEFI, "ewr-0123456789abcd", " vdb: vdb1"},
		{vm.DigitalOcean, vm.BootLegacyBIOS, "db-data", " sda: sda1"},
	} {
		t.Run(tc.platform.Name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			disk := filepath.Join(dir, "disk.raw")
			if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
				t.Fatalf("copying the image: %v: %s", err, out)
			}
			volume := filepath.Join(dir, "volume.raw")
			if err := os.WriteFile(volume, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(volume, 64<<20); err != nil {
				t.Fatal(err)
			}
			// A partition table, so the kernel names the disk and its partition on the console
			// (a blank disk's scan prints nothing).
			writeMBR(t, volume)
			addr := netip.MustParseAddr(fmt.Sprintf("127.0.23.%d", 20+i))
			p := tc.platform
			m, err := vm.Start(context.Background(), vm.Spec{
				Disk: disk, Arch: "amd64", BootMode: tc.boot, Address: addr, Ports: []int{80}, Platform: &p, Dir: filepath.Join(dir, "vm"),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := m.Stop(); err != nil {
					t.Error(err)
				}
			})
			waitHTTP(t, m, "http://"+addr.String()+"/", 6*time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			for range 2 { // the second is a retry: nothing changes
				if err := m.AttachVolume(ctx, tc.id, volume); err != nil {
					t.Fatal(err)
				}
			}
			waitConsole(t, m, tc.kernel, time.Minute)
			t.Logf("%s: the guest found the volume %s after the attach", p.Name, time.Since(start).Round(100*time.Millisecond))
			if has, err := m.HasVolume(ctx, tc.id); err != nil || !has {
				t.Fatalf("HasVolume after attach: %v, %v", has, err)
			}
			start = time.Now()
			if err := m.DetachVolume(ctx, tc.id); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: detach took %s", p.Name, time.Since(start).Round(100*time.Millisecond))
			if has, err := m.HasVolume(ctx, tc.id); err != nil || has {
				t.Fatalf("HasVolume after detach: %v, %v", has, err)
			}
			if err := m.DetachVolume(ctx, tc.id); err != nil {
				t.Fatalf("a second detach: %v", err)
			}
			// Plugged in again after the unplug: the port (or SCSI target) is free again.
			if err := m.AttachVolume(ctx, tc.id, volume); err != nil {
				t.Fatal(err)
			}
			if err := m.DetachVolume(ctx, tc.id); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func waitConsole(t *testing.T, m *vm.Machine, want string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if b, err := m.Console(); err == nil && strings.Contains(string(b), want) {
			return
		}
	}
	b, _ := m.Console()
	lines := strings.Split(string(b), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	t.Fatalf("the console never says %q within %s; its tail:\n%s", want, limit, strings.Join(lines, "\n"))
}

// writeMBR writes a DOS partition table with one Linux partition, the way fdisk would.
func writeMBR(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entry := []byte{0x00, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x10, 0, 0} // LBA 2048, 4096 sectors
	if _, err := f.WriteAt(entry, 446); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x55, 0xaa}, 510); err != nil {
		t.Fatal(err)
	}
}
