package disktest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk"
)

// labImageVersion names the customization below; bump it when it changes so
// the cached image is rebuilt.
const labImageVersion = "lab-nginx-v2"

// LabImage returns a raw disk that boots to nginx on port 80, gets its
// address by DHCP (systemd-networkd) and serves its user-data (read from
// fw_cfg at boot) as /userdata.txt. It is built once per machine and cached
// next to disktest's trees, and shared by the qemu and loopback tests.
func LabImage(t testing.TB) string {
	t.Helper()
	base := BaseTree(t, "nginx")
	dir := filepath.Join(CacheDir(), "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, labImageVersion+"-"+filepath.Base(filepath.Dir(base))+".raw")
	unlock := lockFile(t, out+".lock")
	defer unlock()
	if _, err := os.Stat(out); err == nil {
		return out
	}
	start := time.Now()
	tree := filepath.Join(t.TempDir(), "root")
	runCmd(t, "cp", "-a", base, tree)
	files := map[string]string{
		"etc/systemd/network/80-dhcp.network": "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n",
		"etc/systemd/system/lab-userdata.service": `[Unit]
Description=Publish drover user-data from fw_cfg as /userdata.txt
Before=nginx.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'modprobe qemu_fw_cfg; install -m 0644 /sys/firmware/qemu_fw_cfg/by_name/opt/drover/user-data/raw /var/www/html/userdata.txt'

[Install]
WantedBy=multi-user.target
`,
	}
	for name, content := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runCmd(t, "chroot", tree, "systemctl", "enable", "systemd-networkd", "nginx", "lab-userdata")
	tmp := out + ".tmp"
	_, err := disk.Assemble(context.Background(), disk.Spec{
		Tree:     tree,
		Output:   tmp,
		RootUUID: "6c1e2f3a-4b5d-4e6f-8a7b-1c2d3e4f5a6b",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab image built in %s: %s", time.Since(start).Round(time.Second), out)
	return out
}

func runCmd(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func lockFile(t testing.TB, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() { f.Close() }
}
