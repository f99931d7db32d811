//go:build e2e && lab

package vm_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
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

// TestE2EBootNitroShape boots the disk tests' lab image (nginx, DHCP on en*) from NVMe, with UEFI
// and with legacy BIOS, and reaches nginx through the port forward on the machine's loopback
// address: the disk, the firmware, the NIC in its other slot and the link-local network all work.
// Stop leaves no process.
func TestE2EBootNitroShape(t *testing.T) {
	img := disktest.LabImage(t)
	for i, mode := range []string{vm.BootUEFI, vm.BootLegacyBIOS} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			disk := filepath.Join(dir, "disk.raw")
			if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
				t.Fatalf("copying the image: %v: %s", err, out)
			}
			addr := netip.MustParseAddr(fmt.Sprintf("127.0.23.%d", 10+i))
			start := time.Now()
			m, err := vm.Start(context.Background(), vm.Spec{
				Disk: disk, Arch: "amd64", BootMode: mode, Address: addr, Ports: []int{80}, Dir: filepath.Join(dir, "vm"),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := m.Stop(); err != nil {
					t.Error(err)
				}
			})
			waitHTTP(t, m, "http://"+addr.String()+"/", 4*time.Minute)
			t.Logf("%s: nginx answered %s after start", mode, time.Since(start).Round(100*time.Millisecond))
			console, err := m.Console()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(console), "nvme0n1") {
				t.Errorf("the console never names nvme0n1: the root is not on NVMe")
			}
			pid := m.PID()
			if err := m.Stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "qemu") {
					t.Errorf("qemu pid %d still runs after Stop", pid)
				}
			}
		})
	}
}

// waitHTTP polls url until it answers 200, or fails the test with the console's tail.
func waitHTTP(t *testing.T, m *vm.Machine, url string, limit time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Second) {
		resp, err := client.Get(url)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return string(body)
		}
	}
	console, _ := m.Console()
	lines := strings.Split(string(console), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Fatalf("%s never answered 200 within %s; console tail:\n%s", url, limit, strings.Join(lines, "\n"))
	return ""
}
