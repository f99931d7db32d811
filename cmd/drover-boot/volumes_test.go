package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// fakeDevices is blockDevices that records every call; a device appears after appearAfter looks
// and then holds fsType ("" blank) until MakeFS writes one.
type fakeDevices struct {
	mu          sync.Mutex
	calls       []string
	appearAfter int // Exists answers false this many times
	looks       int
	fsType      string
	probeErr    error
	mountedFrom string
	rescans     int
	// onRescan makes the device appear at the first rescan: a hot-plug event the kernel missed.
	onRescan bool
	// links, when set, are the only paths Exists finds (once the device appeared): what udev
	// made. nvme maps NVMe serials to their namespace devices, found once the device appeared.
	links map[string]bool
	nvme  map[string]string
}

func (f *fakeDevices) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeDevices) Exists(dev string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks++
	appeared := f.looks > f.appearAfter || (f.onRescan && f.rescans > 0)
	if f.links != nil {
		return appeared && f.links[dev], nil
	}
	return appeared, nil
}

func (f *fakeDevices) NVMeBySerial(serial string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.looks <= f.appearAfter {
		return "", nil
	}
	return f.nvme[serial], nil
}

func (f *fakeDevices) Rescan() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rescans++
	return nil
}

func (f *fakeDevices) Probe(_ context.Context, dev string) (string, error) {
	f.record("probe %s", dev)
	return f.fsType, f.probeErr
}

func (f *fakeDevices) MakeFS(_ context.Context, dev, fsType, label string) error {
	f.record("mkfs %s %s label %s", fsType, dev, label)
	f.fsType = fsType
	return nil
}

func (f *fakeDevices) Check(_ context.Context, dev, fsType string) error {
	f.record("fsck %s %s", fsType, dev)
	return nil
}

func (f *fakeDevices) MountedFrom(dir string) (string, error) { return f.mountedFrom, nil }

func (f *fakeDevices) Mount(_ context.Context, dev, dir, fsType string) error {
	f.record("mount %s %s on %s", fsType, dev, dir)
	return nil
}

func (f *fakeDevices) Chown(_ context.Context, dir, owner string) error {
	f.record("chown %s %s", owner, dir)
	return nil
}

func (f *fakeDevices) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

const pgDevice = "/dev/disk/by-id/virtio-vol-1a2b"

// volumeMachine is a machine whose user-data has one volume (no vault section) mounted through
// devices.
func volumeMachine(t *testing.T, devices *fakeDevices, v bootdata.VolumeMount) *machine {
	t.Helper()
	ud, err := bootdata.Marshal(bootdata.UserData{Version: bootdata.Version, Role: "db", Volumes: []bootdata.VolumeMount{v}})
	if err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, "db").withUserData(ud)
	m.cfg.Devices, m.cfg.volumePoll, m.cfg.volumeSay, m.cfg.VolumeWait = devices, time.Millisecond, 5*time.Millisecond, 10*time.Second
	return m
}

func pgVolume() bootdata.VolumeMount {
	return bootdata.VolumeMount{Name: "pgdata", GuestPath: pgDevice, Mount: "/var/lib/postgresql", FS: "ext4", Owner: "postgres:postgres", Mode: 0o700}
}

func (m *machine) readyNotified() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.notified {
		if strings.Contains(n, "READY=1") {
			return true
		}
	}
	return false
}

func TestVolumeBlankIsFormattedAndMountedBeforeReady(t *testing.T) {
	devices := &fakeDevices{appearAfter: 20}
	m := volumeMachine(t, devices, pgVolume())
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	dir := filepath.Join(m.root, "var/lib/postgresql")
	want := []string{
		"probe " + pgDevice,
		"mkfs ext4 " + pgDevice + " label pgdata",
		"mount ext4 " + pgDevice + " on " + dir,
		"chown postgres:postgres " + dir,
	}
	if got := devices.recorded(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("mount point: %v, %v; want a directory of mode 0700", fi, err)
	}
	if !strings.Contains(m.stdout.String(), "waiting for volume pgdata at "+pgDevice) {
		t.Errorf("no waiting line on the console: %q", m.stdout.String())
	}
	m.mu.Lock()
	notified := strings.Join(m.notified, "|")
	m.mu.Unlock()
	if !strings.Contains(notified, "STATUS=waiting for volume pgdata\nEXTEND_TIMEOUT_USEC=") {
		t.Errorf("systemd was not told of the wait: %q", notified)
	}
	if i, j := strings.Index(notified, "EXTEND_TIMEOUT_USEC"), strings.Index(notified, "READY=1"); j < 0 || j < i {
		t.Errorf("READY not sent after the wait: %q", notified)
	}
	st, raw := m.status()
	if st.State != "ok" || !slices.Equal(st.Volumes, []string{"pgdata on /var/lib/postgresql"}) || st.Waiting != "" {
		t.Errorf("status %s", raw)
	}
}

func TestVolumeWithItsFilesystemIsCheckedNotFormatted(t *testing.T) {
	devices := &fakeDevices{fsType: "ext4"}
	v := pgVolume()
	v.Owner, v.Mode = "", 0
	m := volumeMachine(t, devices, v)
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	dir := filepath.Join(m.root, "var/lib/postgresql")
	want := []string{"probe " + pgDevice, "fsck ext4 " + pgDevice, "mount ext4 " + pgDevice + " on " + dir}
	if got := devices.recorded(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if strings.Contains(m.stdout.String(), "waiting") {
		t.Errorf("waited for a device that was there: %q", m.stdout.String())
	}
}

// failsWithServicesStopped runs m and checks that it failed for want, without READY (the services
// stay stopped) and with the reason in the status file.
func failsWithServicesStopped(t *testing.T, m *machine, want string) {
	t.Helper()
	if code := m.run(); code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	if m.readyNotified() {
		t.Error("READY sent: the services would start")
	}
	st, raw := m.status()
	if st.State != "failed" || !strings.Contains(st.Reason, want) || !strings.HasPrefix(st.Reason, "volume pgdata: ") {
		t.Errorf("status %s, want failed for %q", raw, want)
	}
}

func TestVolumeOfAnotherFilesystemIsNeverFormatted(t *testing.T) {
	devices := &fakeDevices{fsType: "xfs"}
	m := volumeMachine(t, devices, pgVolume())
	failsWithServicesStopped(t, m, "holds a xfs filesystem, want ext4: not formatting")
	if got := devices.recorded(); !slices.Equal(got, []string{"probe " + pgDevice}) {
		t.Errorf("calls %q after finding another filesystem", got)
	}
}

func TestVolumeThatHoldsSomethingElseIsNeverFormatted(t *testing.T) {
	_, err := parseBlkid("DEVNAME=/dev/vdb\nPTUUID=1234\nPTTYPE=gpt\n")
	devices := &fakeDevices{probeErr: fmt.Errorf("%s %w", pgDevice, err)}
	m := volumeMachine(t, devices, pgVolume())
	failsWithServicesStopped(t, m, "gpt partition table")
	if got := devices.recorded(); !slices.Equal(got, []string{"probe " + pgDevice}) {
		t.Errorf("calls %q", got)
	}
}

func TestVolumeThatNeverAppearsFails(t *testing.T) {
	devices := &fakeDevices{appearAfter: 1 << 30}
	m := volumeMachine(t, devices, pgVolume())
	m.cfg.VolumeWait = 50 * time.Millisecond
	failsWithServicesStopped(t, m, pgDevice+" did not appear within 50ms")
	if got := devices.recorded(); len(got) != 0 {
		t.Errorf("calls %q for a device that never came", got)
	}
	if strings.Count(m.stdout.String(), "waiting for volume pgdata") < 2 {
		t.Errorf("want a waiting line every few (here 5) milliseconds: %q", m.stdout.String())
	}
	if devices.rescans == 0 {
		t.Error("no rescan of the bus while waiting")
	}
}

// A disk hot-plugged while the kernel was still starting can be on the bus with its event lost:
// the rescan drover-boot asks for at its second waiting line finds it.
func TestVolumeWhoseHotPlugWasMissedIsFoundByARescan(t *testing.T) {
	devices := &fakeDevices{appearAfter: 1 << 30, onRescan: true}
	m := volumeMachine(t, devices, pgVolume())
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	if devices.rescans != 1 {
		t.Errorf("%d rescans, want 1 (the device came at the first)", devices.rescans)
	}
	if !slices.Contains(devices.recorded(), "probe "+pgDevice) {
		t.Errorf("calls %q: the device found by the rescan was not used", devices.recorded())
	}
}

func TestVolumeAlreadyMountedIsKept(t *testing.T) {
	devices := &fakeDevices{mountedFrom: pgDevice}
	v := pgVolume()
	v.Owner = ""
	m := volumeMachine(t, devices, v)
	dir := filepath.Join(m.root, "var/lib/postgresql")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	if got := devices.recorded(); len(got) != 0 {
		t.Errorf("calls %q on a volume already mounted", got)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mode not applied again: %v, %v", fi, err)
	}
}

func TestVolumeMountPointTakenFails(t *testing.T) {
	devices := &fakeDevices{mountedFrom: "/dev/vdc"}
	m := volumeMachine(t, devices, pgVolume())
	failsWithServicesStopped(t, m, "already mounted from /dev/vdc")
	if got := devices.recorded(); len(got) != 0 {
		t.Errorf("calls %q", got)
	}
}

func TestParseBlkid(t *testing.T) {
	if got, err := parseBlkid("DEVNAME=/x\nLABEL=pgdata\nUUID=1\nVERSION=1.0\nTYPE=ext4\nUSAGE=filesystem\n"); got != "ext4" || err != nil {
		t.Errorf("ext4: %q, %v", got, err)
	}
	for _, out := range []string{"DEVNAME=/x\nPTTYPE=dos\n", "DEVNAME=/x\nUSAGE=raid\n", ""} {
		if got, err := parseBlkid(out); err == nil {
			t.Errorf("parseBlkid(%q) = %q, want an error", out, got)
		}
	}
}

func TestMountedFrom(t *testing.T) {
	table := `22 1 0:21 / /proc rw,nosuid - proc proc rw
29 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 29 254:16 / /var/lib/postgresql rw,nosuid,nodev shared:20 - ext4 /dev/vdb rw
41 29 254:32 / /srv/with\040space rw - xfs /dev/vdc rw
`
	for dir, want := range map[string]string{"/var/lib/postgresql": "/dev/vdb", "/srv/with space": "/dev/vdc", "/var/lib": "", "/": "/dev/vda1"} {
		if got, err := mountedFrom(strings.NewReader(table), dir); got != want || err != nil {
			t.Errorf("mountedFrom(%q) = %q, %v; want %q", dir, got, err, want)
		}
	}
}

// TestHostDevicesOnAFileImage runs the real tools on a regular file (no loop device, no mount):
// blank, then formatted with its label, then checked.
func TestHostDevicesOnAFileImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := hostDevices{mountinfo: "/proc/self/mountinfo", sysBlock: "/sys/block"}
	if ok, err := h.Exists(img); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if ok, err := h.Exists(img + ".missing"); ok || err != nil {
		t.Fatalf("Exists(missing) = %v, %v", ok, err)
	}
	if got, err := h.Probe(ctx, img); got != "" || err != nil {
		t.Fatalf("Probe(blank) = %q, %v", got, err)
	}
	if err := h.MakeFS(ctx, img, "ext4", "pgdata"); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Probe(ctx, img); got != "ext4" || err != nil {
		t.Fatalf("Probe(formatted) = %q, %v", got, err)
	}
	out, err := command(ctx, "blkid", "-p", "-o", "export", img)
	if err != nil || !strings.Contains(out, "LABEL=pgdata\n") {
		t.Errorf("blkid: %q, %v; want the volume's name as label", out, err)
	}
	if err := h.Check(ctx, img, "ext4"); err != nil {
		t.Errorf("Check of a fresh filesystem: %v", err)
	}
	if from, err := h.MountedFrom(filepath.Dir(img)); from != "" || err != nil {
		t.Errorf("MountedFrom(a temp dir) = %q, %v", from, err)
	}
	// A device with a partition table is refused, never formatted.
	gpt := filepath.Join(t.TempDir(), "gpt.img")
	if err := os.WriteFile(gpt, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(gpt, 4<<20); err != nil {
		t.Fatal(err)
	}
	writeMBR(t, gpt)
	if got, err := h.Probe(ctx, gpt); err == nil || !strings.Contains(err.Error(), "partition table") {
		t.Errorf("Probe(partitioned) = %q, %v; want a refusal", got, err)
	}
}

// writeMBR writes a DOS partition table with one partition, the way fdisk would.
func writeMBR(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entry := []byte{0x00, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x10, 0, 0} // Linux, LBA 2048, 4096 sectors
	if _, err := f.WriteAt(entry, 446); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x55, 0xaa}, 510); err != nil {
		t.Fatal(err)
	}
}

// TestVolumeFoundByItsGuestPathOnEachCloud mounts each platform's volume where its compute
// provider says the guest finds it: a Vultr block by its virtio serial (the mount_id), a
// DigitalOcean volume by its SCSI link, an EBS volume by the NVMe serial when udev's link has
// another model than Amazon's (the cloud lab's qemu: "QEMU NVMe Ctrl"), and by the link itself
// on EC2.
func TestVolumeFoundByItsGuestPathOnEachCloud(t *testing.T) {
	const ebs = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
	for _, tc := range []struct {
		name, guestPath, device string
		links                   map[string]bool
		nvme                    map[string]string
	}{
		{"vultr", "/dev/disk/by-id/virtio-ewr-0123456789abcd", "/dev/disk/by-id/virtio-ewr-0123456789abcd",
			map[string]bool{"/dev/disk/by-id/virtio-ewr-0123456789abcd": true}, nil},
		{"digitalocean", "/dev/disk/by-id/scsi-0DO_Volume_db-data", "/dev/disk/by-id/scsi-0DO_Volume_db-data",
			map[string]bool{"/dev/disk/by-id/scsi-0DO_Volume_db-data": true}, map[string]string{"db-data": "/dev/nvme9n1"}},
		{"ebs on the lab", ebs, "/dev/nvme1n1",
			map[string]bool{"/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_vol0123456789abcdef0": true},
			map[string]string{"vol0123456789abcdef0": "/dev/nvme1n1", "vol0fedcba9876543210": "/dev/nvme2n1"}},
		{"ebs on ec2", ebs, ebs, map[string]bool{ebs: true}, map[string]string{"vol0123456789abcdef0": "/dev/nvme1n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devices := &fakeDevices{appearAfter: 3, links: tc.links, nvme: tc.nvme}
			v := pgVolume()
			v.GuestPath, v.Owner, v.Mode = tc.guestPath, "", 0
			m := volumeMachine(t, devices, v)
			if code := m.run(); code != exitOK {
				t.Fatalf("exit %d: %s", code, m.stderr.String())
			}
			dir := filepath.Join(m.root, "var/lib/postgresql")
			want := []string{"probe " + tc.device, "mkfs ext4 " + tc.device + " label pgdata", "mount ext4 " + tc.device + " on " + dir}
			if got := devices.recorded(); !slices.Equal(got, want) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if tc.device != tc.guestPath && !strings.Contains(m.stdout.String(), tc.guestPath+" is "+tc.device+" (found by its NVMe serial)") {
				t.Errorf("the console does not say where the volume was found: %q", m.stdout.String())
			}
		})
	}
}

// TestVolumeEBSOtherSerialIsNotTaken waits for an EBS volume while only another volume's NVMe
// device is there: it never mounts that one, and gives up with the services stopped.
func TestVolumeEBSOtherSerialIsNotTaken(t *testing.T) {
	devices := &fakeDevices{links: map[string]bool{}, nvme: map[string]string{"vol0fedcba9876543210": "/dev/nvme1n1"}}
	v := pgVolume()
	v.GuestPath = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
	m := volumeMachine(t, devices, v)
	m.cfg.VolumeWait = 50 * time.Millisecond
	failsWithServicesStopped(t, m, "did not appear within")
	if got := devices.recorded(); len(got) != 0 {
		t.Errorf("calls %q on a device that is not the volume", got)
	}
}

// TestHostNVMeBySerial reads a sysfs tree as the kernel lays it out: namespaces under /sys/block,
// each with its controller's space-padded serial.
func TestHostNVMeBySerial(t *testing.T) {
	sys := t.TempDir()
	for name, serial := range map[string]string{"nvme0n1": "vol0drover          \n", "nvme1n1": "vol0123456789abcdef0\n"} {
		if err := os.MkdirAll(filepath.Join(sys, name, "device"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, name, "device", "serial"), []byte(serial), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(sys, "vda"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := hostDevices{sysBlock: sys}
	for serial, want := range map[string]string{"vol0123456789abcdef0": "/dev/nvme1n1", "vol0drover": "/dev/nvme0n1", "vol0fedcba9876543210": ""} {
		if got, err := h.NVMeBySerial(serial); got != want || err != nil {
			t.Errorf("NVMeBySerial(%s) = %q, %v; want %q", serial, got, err, want)
		}
	}
}
