package disk

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakePiTree has what AssembleCard needs: a kernel and initramfs, and a /boot/firmware as
// raspi-firmware's hooks leave it (firmware, device trees, an overlay, kernel, initramfs, config).
func fakePiTree(t *testing.T, without ...string) string {
	files := map[string]string{
		"boot/vmlinuz-6.1.0-28-arm64":             "K",
		"boot/initrd.img-6.1.0-28-arm64":          "I",
		"boot/firmware/bootcode.bin":              "bootcode",
		"boot/firmware/start.elf":                 strings.Repeat("S", 3<<20),
		"boot/firmware/start4.elf":                "start4",
		"boot/firmware/fixup.dat":                 "fixup",
		"boot/firmware/bcm2837-rpi-3-b.dtb":       "dtb",
		"boot/firmware/overlays/disable-bt.dtbo":  "overlay",
		"boot/firmware/vmlinuz-6.1.0-28-arm64":    strings.Repeat("K", 2<<20),
		"boot/firmware/initrd.img-6.1.0-28-arm64": "initrd",
		"boot/firmware/config.txt":                "arm_64bit=1\nenable_uart=1\n",
		"boot/firmware/cmdline.txt":               "root=/dev/mmcblk0p2 from-the-tree\n",
		"etc/hostname":                            "pi\n",
		"usr/share/a file":                        "x",
	}
	for _, w := range without {
		delete(files, w)
	}
	return writeTree(t, files)
}

func testCardSpec(tree, dir string) CardSpec {
	return CardSpec{Tree: tree, Output: filepath.Join(dir, "card.img"), BundleDir: filepath.Join(dir, "bundle"),
		RootUUID: testRootUUID, MinRootSize: 64 * mib, Headroom: Headroom{Bytes: 8 * mib},
		SourceDateEpoch: time.Unix(1700000000, 0)}
}

type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func TestAssembleCard(t *testing.T) {
	requireCardTools(t)
	dir := t.TempDir()
	res, err := AssembleCard(t.Context(), testCardSpec(fakePiTree(t), dir))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != res.Size || res.Size&(res.Size-1) != 0 {
		t.Errorf("card is %d bytes (result says %d), want a power of two", fi.Size(), res.Size)
	}
	if sum := fileSum(t, res.Path); sum != res.SHA256 {
		t.Errorf("card sha256 %s, result says %s", sum, res.SHA256)
	}
	out, err := exec.Command("sfdisk", "--json", res.Path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	pt := d.PartitionTable
	if pt.Label != "dos" || pt.ID != "0x"+res.DiskID {
		t.Errorf("label %s id %s, want dos 0x%s", pt.Label, pt.ID, res.DiskID)
	}
	wantTypes := []string{"e", "c", "c", "5", "83", "83", "83"}
	if len(pt.Partitions) != len(wantTypes) {
		t.Fatalf("%d partitions, want 7:\n%s", len(pt.Partitions), out)
	}
	part := func(n int) (off, size int64) {
		p := pt.Partitions[n-1]
		if !strings.HasSuffix(p.Node, string(rune('0'+n))) || p.Type != wantTypes[n-1] {
			t.Errorf("partition %d is %s of type %s, want type %s", n, p.Node, p.Type, wantTypes[n-1])
		}
		if p.Start*512%cardAlign != 0 {
			t.Errorf("partition %d starts at sector %d, not 4 MiB aligned", n, p.Start)
		}
		return p.Start * 512, p.Size * 512
	}
	if out, err := exec.Command("sfdisk", "--verify", res.Path).CombinedOutput(); err != nil {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}

	if got := fatRead(t, res.Path, part, 1, "autoboot.txt"); got != AutobootTxt {
		t.Errorf("autoboot.txt = %q, want %q", got, AutobootTxt)
	}
	for i, slot := range res.Slots {
		boot := 2 + i
		if slot.BootPartition != boot || slot.RootPartition != 5+i || slot.RootPARTUUID != res.DiskID+"-0"+string(rune('5'+i)) {
			t.Errorf("slot %+v", slot)
		}
		cmdline := fatRead(t, res.Path, part, boot, "cmdline.txt")
		if !strings.Contains(cmdline, "root=PARTUUID="+slot.RootPARTUUID+" ") || strings.Contains(cmdline, "from-the-tree") ||
			!strings.Contains(cmdline, "console=ttyS1,115200") {
			t.Errorf("slot %s cmdline.txt = %q", slot.Name, cmdline)
		}
		if got := fatRead(t, res.Path, part, boot, "overlays/disable-bt.dtbo"); got != "overlay" {
			t.Errorf("slot %s overlay = %q", slot.Name, got)
		}
		if got := fatRead(t, res.Path, part, boot, "start.elf"); len(got) != 3<<20 {
			t.Errorf("slot %s start.elf is %d bytes", slot.Name, len(got))
		}
	}
	offA, sizeA := part(5)
	offB, sizeB := part(6)
	if sizeA != res.RootPartition || sizeB != res.RootPartition || res.RootPartition < res.RootSize+res.RootSize/4 {
		t.Errorf("root partitions of %d and %d bytes for a %d-byte root filesystem; want %d, a quarter more at least", sizeA, sizeB, res.RootSize, res.RootPartition)
	}
	// Each root filesystem fills the start of its partition; the rest is room for updates.
	rootA, rootB := extract(t, res.Path, offA, res.RootSize), extract(t, res.Path, offB, res.RootSize)
	if fileSum(t, rootA) != fileSum(t, rootB) {
		t.Error("a new card's slot B root differs from slot A's")
	}
	if out, err := exec.Command("e2fsck", "-fn", rootA).CombinedOutput(); err != nil {
		t.Errorf("e2fsck root: %v\n%s", err, out)
	}
	offD, sizeD := part(7)
	if offD+sizeD != res.Size || sizeD != res.DataSize {
		t.Errorf("data partition %d+%d does not end the %d-byte card", offD, sizeD, res.Size)
	}
	data := extract(t, res.Path, offD, sizeD)
	if out, err := exec.Command("e2fsck", "-fn", data).CombinedOutput(); err != nil {
		t.Errorf("e2fsck data: %v\n%s", err, out)
	}
	if out, _ := exec.Command("e2label", data).Output(); strings.TrimSpace(string(out)) != "data" {
		t.Errorf("data label %q", out)
	}

	offBootA, sizeBootA := part(2)
	offBootB, sizeBootB := part(3)
	checkBundle(t, res, filepath.Join(dir, "bundle"), map[string]string{
		"boot-a": fileSum(t, extract(t, res.Path, offBootA, sizeBootA)), "boot-b": fileSum(t, extract(t, res.Path, offBootB, sizeBootB)),
		"root": fileSum(t, rootA)})
}

// checkBundle reads the bundle back: its manifest is the result's, and each part decompresses to
// the slot's filesystem with the recorded digests and block hashes.
func checkBundle(t *testing.T, res CardResult, dir string, want map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, BundleManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var b Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	if res.Bundle == nil || len(b.Parts) != 3 || b.BlockSize != BundleBlockSize {
		t.Fatalf("bundle %+v", b)
	}
	for _, p := range b.Parts {
		if fileSum(t, filepath.Join(dir, p.File)) != p.CompressedSHA256 {
			t.Errorf("%s: compressed sha256 mismatch", p.File)
		}
		f, err := os.Open(filepath.Join(dir, p.File))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		buf := make([]byte, b.BlockSize)
		var n int64
		for i := 0; ; i++ {
			k, err := io.ReadFull(zr, buf)
			if k > 0 {
				sum := sha256.Sum256(buf[:k])
				if i >= len(p.Blocks) || hex.EncodeToString(sum[:]) != p.Blocks[i] {
					t.Errorf("%s: block %d hash differs", p.File, i)
				}
				h.Write(buf[:k])
				n += int64(k)
			}
			if err != nil {
				break
			}
		}
		f.Close()
		key := p.Role
		if p.Slot != "" {
			key += "-" + p.Slot
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 || got != want[key] || n != p.Size {
			t.Errorf("%s (%s): %d bytes sha256 %s, manifest %d %s, the card's %s", p.File, key, n, got, p.Size, p.SHA256, want[key])
		}
		if int64(len(p.Blocks)) != (p.Size+int64(b.BlockSize)-1)/int64(b.BlockSize) {
			t.Errorf("%s: %d block hashes for %d bytes", p.File, len(p.Blocks), p.Size)
		}
	}
}

func TestAssembleCardNeedsTheFirmware(t *testing.T) {
	requireCardTools(t)
	for _, missing := range []string{"boot/firmware/start.elf", "boot/firmware/initrd.img-6.1.0-28-arm64"} {
		without := []string{missing}
		if missing == "boot/firmware/start.elf" {
			without = append(without, "boot/firmware/start4.elf")
		}
		dir := t.TempDir()
		_, err := AssembleCard(t.Context(), testCardSpec(fakePiTree(t, without...), dir))
		if err == nil || !strings.Contains(err.Error(), filepath.Base(strings.Replace(missing, "start.elf", "start*.elf", 1))) {
			t.Errorf("without %s: %v", missing, err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("without %s the failure left %v", missing, left)
		}
	}
}

func TestCardLayoutIsAPowerOfTwo(t *testing.T) {
	for _, root := range []int64{64 * mib, 1000 * mib, 1900 * mib} {
		l := newCardLayout("1a2b3c4d", minCardBoot, root)
		if l.total&(l.total-1) != 0 || l.dataSize < minCardData || l.dataStart+l.dataSize != l.total {
			t.Errorf("root %d MiB: layout %+v", root/mib, l)
		}
		// Room for an update's root to grow, which takes no more than half of what the card has
		// beyond its minimal layout away from the data partition.
		minimal := placeCard("1a2b3c4d", minCardBoot, root+roundUp(root/4, cardAlign))
		if l.rootSize < root+root/4 || l.total != minimal.total || l.dataSize < minCardData+(minimal.dataSize-minCardData)/2 {
			t.Errorf("root %d MiB: partitions of %d MiB, data %d MiB of a %d MiB card; minimal layout %+v", root/mib, l.rootSize/mib, l.dataSize/mib, l.total/mib, minimal)
		}
	}
}

func requireCardTools(t *testing.T) {
	t.Helper()
	if err := checkTools(append(cardTools(), Tool{"e2fsck", "e2fsprogs"}, Tool{"mtype", "mtools"})); err != nil {
		t.Skip(err)
	}
}

// fatRead is a file's content on FAT partition n of the card, read with mtools at its offset.
func fatRead(t *testing.T, card string, part func(int) (int64, int64), n int, name string) string {
	t.Helper()
	off, _ := part(n)
	cmd := exec.Command("mtype", "-i", card+"@@"+itoa(off), "::/"+name)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("mtype %s on partition %d: %v", name, n, err)
	}
	return string(out)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func fileSum(t *testing.T, p string) string {
	t.Helper()
	s, err := sha256File(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
