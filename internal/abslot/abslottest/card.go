// Package abslottest makes small A/B cards for tests (the rpi builder's layout, sized in MiB
// rather than hundreds: MBR, autoboot FAT, two FAT boot slots, an extended partition with two ext4
// roots and a data partition) and plays the firmware's part at a reboot. The tools are the card
// builder's: sfdisk, mkfs.vfat, mtools, mkfs.ext4.
package abslottest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/abslot"
)

const mib = 1 << 20

// DiskID is the test cards' MBR disk identifier.
const DiskID = "d0d0cafe"

// Layout of a test card, in MiB.
const (
	autobootStart = 1
	autobootSize  = 8
	bootSize      = 8
	rootSize      = 32
	dataSize      = 8
)

// Epoch stamps every filesystem, so the same tree gives the same bytes.
var Epoch = time.Unix(1700000000, 0)

// RequireTools fails t when a card tool is missing (they are in .ci/run's packages).
func RequireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.vfat", "mcopy", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install fdisk dosfstools mtools e2fsprogs; .ci/run installs them)", tool)
		}
	}
}

// Slot images are a slot's boot FAT and root ext4, as the bundle carries them.
type Slot struct{ Boot, Root string }

// MakeSlot builds a slot's filesystems in dir from files (path in the root -> content; "boot/..."
// goes to the boot FAT instead).
func MakeSlot(t testing.TB, dir string, files map[string]string) Slot {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	bootTree := filepath.Join(dir, "boot-tree")
	for p, content := range files {
		dst := filepath.Join(tree, p)
		if rest, ok := strings.CutPrefix(p, "boot/"); ok {
			dst = filepath.Join(bootTree, rest)
		}
		must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		must(t, os.WriteFile(dst, []byte(content), 0o644))
		must(t, os.Chtimes(dst, Epoch, Epoch))
	}
	must(t, os.MkdirAll(tree, 0o755))
	must(t, filepath.Walk(tree, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, Epoch, Epoch)
	}))
	s := Slot{Boot: filepath.Join(dir, "boot.vfat"), Root: filepath.Join(dir, "root.ext4")}
	makeFAT(t, s.Boot, bootSize, "BOOT", bootTree)
	sized(t, s.Root, rootSize)
	run(t, []string{"E2FSPROGS_FAKE_TIME=1700000000"}, "mkfs.ext4", "-q", "-F", "-L", "root",
		"-U", "6a1b9c52-3f0e-4d8a-9b7c-2e5f4a1d0c3b", "-E", "root_owner=0:0,hash_seed=0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b",
		"-d", tree, s.Root)
	return s
}

// MakeBundle writes the bundle of s to dir, as the rpi builder does.
func MakeBundle(t testing.TB, dir string, s Slot) *abslot.Bundle {
	t.Helper()
	b, err := abslot.WriteBundle(context.Background(), dir, t.TempDir(),
		[]abslot.PartSource{{Name: "boot.vfat", Path: s.Boot, Role: "boot"}, {Name: "root.ext4", Path: s.Root, Role: "root"}})
	must(t, err)
	return b
}

// MakeCard writes a card at path whose two slots both hold s and whose autoboot.txt commits slot a.
func MakeCard(t testing.TB, path string, s Slot) {
	t.Helper()
	dir := t.TempDir()
	autoTree := filepath.Join(dir, "auto")
	must(t, os.MkdirAll(autoTree, 0o755))
	must(t, os.WriteFile(filepath.Join(autoTree, "autoboot.txt"), []byte(abslot.Autoboot(abslot.Slots[0])), 0o644))
	auto := filepath.Join(dir, "autoboot.vfat")
	makeFAT(t, auto, autobootSize, "AUTOBOOT", autoTree)

	boot := [2]int64{autobootStart + autobootSize, autobootStart + autobootSize + bootSize}
	ext := boot[1] + bootSize
	root := [2]int64{ext + 1, ext + 1 + rootSize + 1}
	data := root[1] + rootSize + 1
	total := data + dataSize
	sized(t, path, total)
	script := fmt.Sprintf("label: dos\nlabel-id: 0x%s\nunit: sectors\n\n", DiskID)
	part := func(start, size int64, typ string) {
		script += fmt.Sprintf("start=%d, size=%d, type=%s\n", start*mib/512, size*mib/512, typ)
	}
	part(autobootStart, autobootSize, "e")
	part(boot[0], bootSize, "c")
	part(boot[1], bootSize, "c")
	part(ext, total-ext, "5")
	part(root[0], rootSize, "83")
	part(root[1], rootSize, "83")
	part(data, dataSize, "83")
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
	for _, c := range []struct {
		img string
		at  int64
	}{{auto, autobootStart}, {s.Boot, boot[0]}, {s.Boot, boot[1]}, {s.Root, root[0]}, {s.Root, root[1]}} {
		run(t, nil, "dd", "if="+c.img, "of="+path, "bs=1M", fmt.Sprintf("seek=%d", c.at), "conv=notrunc,fsync", "status=none")
	}
}

func makeFAT(t testing.TB, img string, size int64, label, tree string) {
	sized(t, img, size)
	run(t, nil, "mkfs.vfat", "--invariant", "-F", "16", "-s", "1", "-n", label, "-i", "12345678", img)
	entries, err := os.ReadDir(tree)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		run(t, []string{"SOURCE_DATE_EPOCH=1700000000", "MTOOLS_SKIP_CHECK=1"}, "mcopy", "-i", img, "-s", "-m", filepath.Join(tree, e.Name()), "::/"+e.Name())
	}
}

func sized(t testing.TB, path string, mibs int64) {
	f, err := os.Create(path)
	must(t, err)
	must(t, f.Truncate(mibs*mib))
	must(t, f.Close())
}

func run(t testing.TB, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Firmware plays the Pi firmware's part at a reboot of a test device whose card is Card: it boots
// the partition autoboot.txt names ([tryboot] when the one-time flag was set through the stand-in
// port TrybootPort, which it then clears) and writes Cmdline as that slot's cmdline.txt would make
// the kernel's command line.
type Firmware struct {
	Card, TrybootPort, Cmdline string
}

// Boot reboots the test device and returns the slot that now runs.
func (fw Firmware) Boot(t testing.TB) string {
	t.Helper()
	f, err := os.Open(fw.Card)
	must(t, err)
	defer f.Close()
	tab, err := abslot.ReadTable(f)
	must(t, err)
	text, err := abslot.ReadAutoboot(f, tab)
	must(t, err)
	flag, err := os.ReadFile(fw.TrybootPort)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	boot, err := abslot.FirmwareChoice(text, strings.Contains(string(flag), "tryboot"))
	must(t, err)
	must(t, os.WriteFile(fw.TrybootPort, nil, 0o644)) // the flag is one-time
	for _, s := range abslot.Slots {
		if s.Boot == boot {
			must(t, os.WriteFile(fw.Cmdline, []byte(fmt.Sprintf("console=ttyS1 root=PARTUUID=%s-%02x rootwait\n", tab.DiskID, s.Root)), 0o644))
			return s.Name
		}
	}
	t.Fatalf("autoboot.txt boots partition %d, no slot's", boot)
	return ""
}
