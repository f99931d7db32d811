package disk

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var arm64 = arches[ArchARM64]

func testBootFilesARM64() bootFiles {
	return bootFiles{version: "6.1.0-28-arm64", kernel: "boot/vmlinuz-6.1.0-28-arm64", initrd: "boot/initrd.img-6.1.0-28-arm64"}
}

func TestGrubCfgARM64Golden(t *testing.T) {
	root := mustUUID(t, testRootUUID)
	got := renderGrubCfg(arm64, root, testBootFilesARM64(), arm64.kernelCmdline(root, "quiet"))
	golden(t, "grub.arm64.cfg.golden", got)
	if strings.Contains(got, "serial") {
		t.Error("arm64 grub.cfg sets up GRUB's serial terminal; the firmware console is the serial port")
	}
}

func TestSfdiskScriptARM64Golden(t *testing.T) {
	l := newLayout(arm64, mustUUID(t, testRootUUID), 64*mib, 1024*mib)
	got := l.sfdiskScript()
	golden(t, "sfdisk.arm64.golden", got)
	if strings.Contains(got, "LegacyBIOSBootable") {
		t.Error("arm64 ESP is marked LegacyBIOSBootable")
	}
}

func TestKernelCmdlineARM64(t *testing.T) {
	root := mustUUID(t, testRootUUID)
	got := arm64.kernelCmdline(root, "quiet")
	want := "root=UUID=" + testRootUUID + " rw console=tty0 console=ttyS0,115200n8 console=ttyAMA0,115200n8 quiet"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLookupArch(t *testing.T) {
	for in, want := range map[string]string{"": ArchAMD64, "amd64": ArchAMD64, "arm64": ArchARM64} {
		a, err := lookupArch(in)
		if err != nil || a.name != want {
			t.Errorf("lookupArch(%q) = %q, %v; want %q", in, a.name, err, want)
		}
	}
	_, err := lookupArch("riscv64")
	if err == nil || !strings.HasPrefix(err.Error(), "disk: spec: Arch \"riscv64\"") || !strings.Contains(err.Error(), "amd64, arm64") {
		t.Errorf("err = %v", err)
	}
}

func TestRequiredToolsArch(t *testing.T) {
	amd, err := RequiredToolsArch(ArchAMD64)
	if err != nil || !slices.Equal(amd, RequiredTools()) {
		t.Fatalf("RequiredToolsArch(amd64) = %v, %v; want RequiredTools()", amd, err)
	}
	arm, err := RequiredToolsArch(ArchARM64)
	if err != nil {
		t.Fatal(err)
	}
	var names, pkgs []string
	for _, tool := range arm {
		names, pkgs = append(names, tool.Name), append(pkgs, tool.Package)
	}
	if !slices.Contains(names, "/usr/lib/grub/arm64-efi/linux.mod") || !slices.ContainsFunc(pkgs, func(p string) bool {
		return p == "grub-efi-arm64-bin" || p == "grub-efi-arm64-bin:arm64"
	}) {
		t.Errorf("arm64 tools lack GRUB's arm64 modules: %v", arm)
	}
	for _, bios := range []string{"syslinux", gptMBRPath} {
		if slices.Contains(names, bios) {
			t.Errorf("arm64 tools list BIOS boot's %s", bios)
		}
	}
	if _, err := RequiredToolsArch("mips"); err == nil {
		t.Error("an unknown architecture was accepted")
	}
}

func TestInstallHintAddsForeignArch(t *testing.T) {
	if got := installHint([]string{"mtools"}); got != "apt-get install mtools" {
		t.Errorf("got %q", got)
	}
	got := installHint([]string{"mtools", "grub-efi-arm64-bin:arm64"})
	want := "dpkg --add-architecture arm64 && apt-get update && apt-get install mtools grub-efi-arm64-bin:arm64"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// peImage is the start of a PE file for machine, as a kernel with an EFI
// stub begins.
func peImage(machine uint16) []byte {
	b := make([]byte, 512)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], machine)
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckKernelArch(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	x86 := write("x86", peImage(0x8664))
	armGz := write("arm.gz", gzipped(t, peImage(0xaa64)))
	unknown := write("unknown", []byte("KKKK"))
	for _, c := range []struct {
		path string
		a    arch
		ok   bool
	}{
		{x86, amd64, true}, {x86, arm64, false},
		{armGz, arm64, true}, {armGz, amd64, false},
		{unknown, amd64, true}, {unknown, arm64, true},
	} {
		err := checkKernelArch(c.path, c.a)
		if (err == nil) != c.ok {
			t.Errorf("checkKernelArch(%s, %s) = %v", filepath.Base(c.path), c.a.name, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "disk: kernel ") {
			t.Errorf("error %q", err)
		}
	}
	if err := checkKernelArch(filepath.Join(dir, "missing"), amd64); err == nil {
		t.Error("a missing kernel passed")
	}
}

// fakeTreeARM64 is fakeTree's arm64 twin, its kernel gzipped with an
// arm64 PE header as Debian's is.
func fakeTreeARM64(t *testing.T) string {
	return writeTree(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-arm64":    string(gzipped(t, append(peImage(0xaa64), bytes.Repeat([]byte("K"), 3<<20)...))),
		"boot/initrd.img-6.1.0-9-arm64": strings.Repeat("I", 5<<20),
		"etc/hostname":                  "fake\n",
	})
}

func requireToolsArch(t *testing.T, arch string) {
	t.Helper()
	tools, err := RequiredToolsArch(arch)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTools(tools); err != nil {
		t.Skip(err)
	}
}

func TestAssembleARM64FakeTree(t *testing.T) {
	requireToolsArch(t, ArchARM64)
	ctx := context.Background()
	tree, dir := fakeTreeARM64(t), t.TempDir()
	spec := testSpec(tree, filepath.Join(dir, "a.raw"))
	spec.Arch = ArchARM64
	a, err := Assemble(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Output = filepath.Join(dir, "b.raw")
	b, err := Assemble(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != b.SHA256 {
		t.Errorf("same tree and spec gave different disks: %s vs %s", a.SHA256, b.SHA256)
	}
	if !strings.Contains(a.Cmdline, "console=ttyAMA0") || a.KernelVersion != "6.1.0-9-arm64" {
		t.Errorf("result: %+v", a)
	}
	checkPartitionsARM64(t, a.Path)
	if mbr := readAt(t, a.Path, 0, mbrCodeSize); !bytes.Equal(mbr, make([]byte, mbrCodeSize)) {
		t.Error("arm64 disk has BIOS boot code in its MBR")
	}
	l := newLayout(arm64, mustUUID(t, testRootUUID), a.ESPSize, a.RootSize)
	esp := extract(t, a.Path, l.espStart, l.espSize)
	if got := espListing(t, esp); !slices.Equal(got, []string{"::/EFI/BOOT/BOOTAA64.EFI"}) {
		t.Errorf("ESP files = %v, want GRUB alone", got)
	}
	efi := filepath.Join(t.TempDir(), "BOOTAA64.EFI")
	mcopyOut(t, esp, "::/EFI/BOOT/BOOTAA64.EFI", efi)
	if m, ok := peMachine(readAt(t, efi, 0, peHeaderMax)); !ok || m != 0xaa64 {
		t.Errorf("BOOTAA64.EFI is PE machine %#x (%v), want arm64 0xaa64", m, ok)
	}
}

func TestAssembleRefusesKernelOfOtherArch(t *testing.T) {
	requireToolsArch(t, ArchARM64)
	tree := writeTree(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":    string(peImage(0x8664)),
		"boot/initrd.img-6.1.0-9-amd64": "I",
	})
	spec := testSpec(tree, filepath.Join(t.TempDir(), "x.raw"))
	spec.Arch = ArchARM64
	_, err := Assemble(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "is for amd64, not arm64") {
		t.Errorf("err = %v", err)
	}
}

func checkPartitionsARM64(t *testing.T, raw string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--dump", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	dump := string(out)
	if !strings.Contains(dump, "type="+arm64.rootType) || strings.Contains(dump, "LegacyBIOSBootable") {
		t.Errorf("partition table is not arm64's:\n%s", dump)
	}
	if out, err := exec.Command("sfdisk", "--verify", raw).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
}

// espListing lists every file on a FAT image, recursively.
func espListing(t *testing.T, img string) []string {
	t.Helper()
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat: %v\n%s", err, out)
	}
	cmd := exec.Command("mdir", "-/", "-b", "-i", img, "::/")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasSuffix(line, "/") { // mdir -b ends directories with /
			files = append(files, line)
		}
	}
	return files
}

func mcopyOut(t *testing.T, img, src, dst string) {
	t.Helper()
	cmd := exec.Command("mcopy", "-i", img, src, dst)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
	}
}

func readAt(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
