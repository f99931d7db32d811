package vm

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestArgsLookLikeNitro(t *testing.T) {
	dir := t.TempDir()
	s := Spec{Disk: "/var/lib/disk,1.raw", Arch: "amd64", Address: netip.MustParseAddr("127.0.0.9"), Ports: []int{80, 443}, Dir: dir}.withDefaults()
	fwds := map[netip.AddrPort]netip.AddrPort{
		metadataAPI: netip.MustParseAddrPort("127.0.0.1:4000"),
		netip.MustParseAddrPort("169.254.169.100:8200"): netip.MustParseAddrPort("127.0.0.1:8200"),
	}
	argv, err := args(s, "tcg", "/tmp/tcppipe", fwds)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(argv, " ")
	for _, want := range []string{
		"qemu-system-x86_64 -machine q35 -name guest=drover-cloudlab-" + filepath.Base(dir) + " ",
		"-drive file=/var/lib/disk,,1.raw,format=raw,if=none,id=root -device nvme,drive=root,",
		"net=169.254.169.0/24,host=169.254.169.1,dhcpstart=169.254.169.15,dns=169.254.169.253",
		",hostfwd=tcp:127.0.0.9:80-169.254.169.15:80,hostfwd=tcp:127.0.0.9:443-169.254.169.15:443",
		",guestfwd=tcp:169.254.169.100:8200-cmd:/tmp/tcppipe 127.0.0.1:8200,guestfwd=tcp:169.254.169.254:80-cmd:/tmp/tcppipe 127.0.0.1:4000",
		"-device virtio-net-pci,netdev=net0,addr=0x5",
		"-serial file:" + filepath.Join(dir, consoleFile),
		"-smbios type=1,manufacturer=Amazon EC2,",
		"-bios " + ovmfPath,
		"-daemonize",
		"-qmp unix:" + filepath.Join(dir, monitorFile) + ",server=on,wait=off",
		// Hot-plugged volumes need ports of their own on q35's root bus.
		"-device pcie-root-port,id=hp0,chassis=1,bus=pcie.0,addr=0x10",
		"-device pcie-root-port,id=hp3,chassis=4,bus=pcie.0,addr=0x13",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("qemu's command line lacks %q:\n%s", want, line)
		}
	}
	// The lab's mark would make drover-boot read fw_cfg only: a cloud VM has no fw_cfg entries.
	if strings.Contains(line, "fw_cfg") {
		t.Errorf("qemu's command line has fw_cfg entries:\n%s", line)
	}

	s.BootMode = BootLegacyBIOS
	argv, err = args(s, "tcg", "/tmp/tcppipe", fwds)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(argv, "-bios") {
		t.Errorf("legacy BIOS boot passes -bios (SeaBIOS is qemu's default): %v", argv)
	}

	s.Arch, s.BootMode = "arm64", BootUEFI
	argv, err = args(s, "tcg", "/tmp/tcppipe", fwds)
	if err != nil {
		t.Skipf("no arm64 firmware here: %v", err)
	}
	if line := strings.Join(argv, " "); !strings.HasPrefix(line, "qemu-system-aarch64 -machine virt -cpu max ") || !strings.Contains(line, "-bios "+aavmfPath) {
		t.Errorf("arm64 command line: %s", line)
	}
}

// TestArgsPerPlatform checks what a droplet and a Vultr instance see that an EC2 instance does not:
// a virtio disk (/dev/vda), their SMBIOS vendor, and a droplet's ports forwarded to the address it
// configures from its metadata rather than to the DHCP lease.
func TestArgsPerPlatform(t *testing.T) {
	for _, tc := range []struct {
		platform Platform
		guest    netip.Addr
		want     []string
	}{
		{Vultr, netip.Addr{}, []string{
			"-device virtio-blk-pci,drive=root,",
			"-device pcie-root-port,id=hp0,",
			"net=169.254.0.0/16,host=169.254.0.1,dhcpstart=169.254.10.15,dns=169.254.10.253",
			",hostfwd=tcp:127.0.0.9:80-169.254.10.15:80",
			"-smbios type=1,manufacturer=Vultr,product=VC2",
		}},
		{DigitalOcean, netip.MustParseAddr("169.254.20.7"), []string{
			"-device virtio-blk-pci,drive=root,",
			// Volumes are SCSI disks on a controller that is there from the start.
			"-device virtio-scsi-pci,id=scsi0,",
			",hostfwd=tcp:127.0.0.9:80-169.254.20.7:80",
			"-smbios type=1,manufacturer=DigitalOcean,product=Droplet",
		}},
	} {
		p := tc.platform
		s := Spec{Disk: "/disk.raw", Arch: "amd64", Address: netip.MustParseAddr("127.0.0.9"), Ports: []int{80}, Dir: t.TempDir(), Platform: &p, GuestAddress: tc.guest}.withDefaults()
		argv, err := args(s, "tcg", "/tmp/tcppipe", map[netip.AddrPort]netip.AddrPort{metadataAPI: netip.MustParseAddrPort("127.0.0.1:4000")})
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Join(argv, " ")
		for _, want := range tc.want {
			if !strings.Contains(line, want) {
				t.Errorf("%s: qemu's command line lacks %q:\n%s", p.Name, want, line)
			}
		}
		if strings.Contains(line, "nvme") {
			t.Errorf("%s: the disk is on NVMe:\n%s", p.Name, line)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := Spec{Disk: disk, Arch: "amd64", Dir: t.TempDir(), Address: netip.MustParseAddr("127.0.0.9"), Ports: []int{80}}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*Spec)
		want string
	}{
		"arch":           {func(s *Spec) { s.Arch = "riscv64" }, `architecture "riscv64": want amd64 or arm64`},
		"boot mode":      {func(s *Spec) { s.BootMode = "uefi-preferred" }, `boot mode "uefi-preferred": want uefi or legacy-bios`},
		"arm64 bios":     {func(s *Spec) { s.Arch, s.BootMode = "arm64", BootLegacyBIOS }, "arm64 boots UEFI only"},
		"public address": {func(s *Spec) { s.Address = netip.MustParseAddr("192.0.2.1") }, "want a loopback address"},
		"port":           {func(s *Spec) { s.Ports = []int{0} }, "port 0: want 1-65535"},
		"route outside": {func(s *Spec) {
			s.Routes = map[netip.AddrPort]netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:8200"): netip.MustParseAddrPort("127.0.0.1:8200")}
		}, "route 10.0.0.5:8200: want a guest address:port in 169.254.169.0/24"},
		"route over imds": {func(s *Spec) {
			s.Routes = map[netip.AddrPort]netip.AddrPort{metadataAPI: netip.MustParseAddrPort("127.0.0.1:8200")}
		}, "other than the metadata service"},
		"route to outside": {func(s *Spec) {
			s.Routes = map[netip.AddrPort]netip.AddrPort{netip.MustParseAddrPort("169.254.169.100:8200"): netip.MustParseAddrPort("192.0.2.1:8200")}
		}, "want a host loopback address:port"},
		"missing disk":          {func(s *Spec) { s.Disk += ".gone" }, "vm: disk: "},
		"guest address outside": {func(s *Spec) { s.GuestAddress = netip.MustParseAddr("10.0.0.5") }, "guest address 10.0.0.5: want an address in 169.254.169.0/24"},
		"guest address on imds": {func(s *Spec) { s.GuestAddress = metadataIP }, "other than the gateway and the metadata service"},
		"disk bus": {func(s *Spec) {
			p := Vultr
			p.DiskBus = "scsi"
			s.Platform = &p
		}, `platform "vultr": disk bus "scsi": want nvme or virtio`},
		"volume bus": {func(s *Spec) {
			p := EC2
			p.VolumeBus = "ide"
			s.Platform = &p
		}, `platform "ec2": volume bus "ide": want nvme, virtio or scsi`},
		"net without imds": {func(s *Spec) {
			p := DigitalOcean
			p.Net = netip.MustParsePrefix("10.0.0.0/8")
			s.Platform = &p
		}, "want one that contains the metadata service 169.254.169.254"},
	} {
		s := ok
		tc.edit(&s)
		err := s.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", name, err, tc.want)
		}
	}
}

// TestVolumeIDs checks what each platform's guest may be shown of a volume, and that qemu's ids for
// it are valid node names (at most 31 characters, a letter first) and differ per volume.
func TestVolumeIDs(t *testing.T) {
	for _, tc := range []struct {
		p  Platform
		id string
		ok bool
	}{
		{EC2, "vol0123456789abcdef0", true},
		{EC2, "vol0123456789abcdef01", false}, // 21: longer than an NVMe serial
		{Vultr, "ewr-0123456789abcd", true},
		{Vultr, "ewr 01", false},
		{DigitalOcean, "db-data-" + strings.Repeat("x", 56), true},
		{DigitalOcean, "db-data-" + strings.Repeat("x", 57), false},
		{DigitalOcean, "", false},
		{DigitalOcean, "a,drive=root", false},
	} {
		if err := tc.p.checkVolumeID(tc.id); (err == nil) != tc.ok {
			t.Errorf("%s: volume %q: %v, want ok %v", tc.p.Name, tc.id, err, tc.ok)
		}
	}
	d1, n1 := qemuIDs("vol0123456789abcdef0")
	d2, n2 := qemuIDs("vol0123456789abcdef1")
	if d1 == d2 || n1 == n2 || len(n1) > 31 || len(d1) > 31 || !strings.HasPrefix(n1, "node") || !strings.HasPrefix(d1, "vol") {
		t.Errorf("qemu ids %s %s and %s %s", d1, n1, d2, n2)
	}
}

// TestPipeProgram builds tcppipe and runs it the way qemu's guestfwd does (the guest's socket on
// stdin and stdout): an HTTP request written to it reaches a loopback server and the answer comes
// back.
func TestPipeProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with the go toolchain")
	}
	pipe, err := pipeProgram(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "token for "+r.Method)
	}))
	defer srv.Close()
	cmd := exec.Command(pipe, strings.TrimPrefix(srv.URL, "http://"))
	cmd.Stdin = strings.NewReader("PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tcppipe: %v", err)
	}
	if !strings.HasPrefix(string(out), "HTTP/1.1 200 OK") || !strings.HasSuffix(string(out), "token for PUT") {
		t.Errorf("tcppipe relayed %q", out)
	}
}
