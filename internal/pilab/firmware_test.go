package pilab

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/drover-dev/drover/images/disk"
)

func TestParseAutoboot(t *testing.T) {
	// What drover's strategy writes after a commit of slot A: a trial boots slot B.
	committedA := "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n# padding\n#-----\n"
	for _, c := range []struct {
		name, text string
		trial      bool
		want       int
		ab         bool
	}{
		{"new card", disk.AutobootTxt, false, 2, true},
		{"new card, trial: its [tryboot] section names slot B", disk.AutobootTxt, true, 3, true},
		{"committed A", committedA, false, 2, true},
		{"committed A, trial", committedA, true, 3, true},
		{"committed B, trial", "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n", true, 2, true},
		{"no boot_partition: the firmware's partition 1", "[all]\ntryboot_a_b=1\n", false, 1, true},
		{"another board's section does not apply", "boot_partition=2\n[pi5]\nboot_partition=9\n[all]\n", false, 2, false},
		{"the Pi 4's does", "boot_partition=2\n[pi4]\nboot_partition=3\n", false, 3, false},
		{"board and tryboot filters combine", "boot_partition=2\n[pi4]\n[tryboot]\nboot_partition=3\n", false, 2, false},
		{"board and tryboot filters combine, trial", "boot_partition=2\n[pi4]\n[tryboot]\nboot_partition=3\n", true, 3, false},
		{"a board filter replaces another", "boot_partition=2\n[pi5]\n[pi4]\nboot_partition=3\n", false, 3, false},
		{"[none] until [all]", "boot_partition=2\n[none]\nboot_partition=3\n[all]\ntryboot_a_b=1\n", false, 2, true},
		{"unknown filters do not match", "boot_partition=2\n[gpio4=1]\nboot_partition=3\n", false, 2, false},
		{"last value wins", "boot_partition=3\nboot_partition=2\n", false, 2, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseAutoboot(c.text, c.trial)
			if err != nil || a.Partition != c.want || a.TrybootAB != c.ab {
				t.Errorf("ParseAutoboot(trial %v) = %+v, %v; want partition %d, tryboot_a_b %v", c.trial, a, err, c.want, c.ab)
			}
		})
	}
	if _, err := ParseAutoboot("[all]\nboot_partition=two\n", false); err == nil {
		t.Error("boot_partition=two accepted")
	}
	if got := (Autoboot{TrybootAB: false}).ConfigFile(true); got != "tryboot.txt" {
		t.Errorf("a trial without tryboot_a_b reads %s, want tryboot.txt", got)
	}
	if got := (Autoboot{TrybootAB: true}).ConfigFile(true); got != "config.txt" {
		t.Errorf("a trial with tryboot_a_b reads %s, want config.txt", got)
	}
}

func TestParseConfig(t *testing.T) {
	// The shape of Debian's raspi-firmware config.txt: board sections, then [all] naming the
	// versioned kernel and initramfs.
	debian := `# Do not modify this file!
[pi3]
audio_pwm_mode=2
[pi4]
dtparam=audio=on
dtoverlay=vc4-kms-v3d
[all]
arm_64bit=1
kernel=vmlinuz-6.1.0-28-arm64
initramfs initrd.img-6.1.0-28-arm64 followkernel
enable_uart=1
`
	b, err := ParseConfig(debian, false)
	if err != nil || b != (BootFiles{Kernel: "vmlinuz-6.1.0-28-arm64", Initramfs: "initrd.img-6.1.0-28-arm64", Cmdline: "cmdline.txt"}) {
		t.Errorf("Debian's config.txt: %+v, %v", b, err)
	}
	b, err = ParseConfig("os_prefix=next/\n[pi3]\nkernel=wrong.img\n[pi4]\nramfsfile=initrd.img\ncmdline=cmd.txt\n[tryboot]\nkernel=trial.img\n", true)
	if err != nil || b != (BootFiles{Kernel: "next/trial.img", Initramfs: "next/initrd.img", Cmdline: "cmd.txt"}) {
		t.Errorf("prefix, filters, trial: %+v, %v", b, err)
	}
	b, err = ParseConfig("", false)
	if err != nil || b != (BootFiles{Kernel: "kernel8.img", Cmdline: "cmdline.txt"}) {
		t.Errorf("defaults: %+v, %v", b, err)
	}
	if _, err := ParseConfig("kernel=../../etc/passwd\n", false); err == nil {
		t.Error("a kernel outside the partition accepted")
	}
}

// TestPartitionOffset reads primary and logical partitions of an MBR with an extended partition,
// laid out as the rpi builder's card is.
func TestPartitionOffset(t *testing.T) {
	const ext, sectors = 1000, 8192
	img := make([]byte, sectors*sectorSize)
	entry := func(sec []byte, i int, typ byte, start uint32) {
		e := sec[446+16*i:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], 100)
		sec[510], sec[511] = 0x55, 0xaa
	}
	mbr := img[:sectorSize]
	entry(mbr, 0, 0x0e, 8)
	entry(mbr, 1, 0x0c, 200)
	entry(mbr, 2, 0x0c, 400)
	entry(mbr, 3, 0x05, ext)
	// EBRs at ext, ext+300, ext+600: each logical partition starts 8 sectors after its EBR.
	for i, rel := range []uint32{0, 300, 600} {
		sec := img[(ext+int(rel))*sectorSize:][:sectorSize]
		entry(sec, 0, 0x83, 8)
		if i < 2 {
			entry(sec, 1, 0x05, rel+300)
		}
	}
	card := filepath.Join(t.TempDir(), "card.img")
	if err := os.WriteFile(card, img, 0o644); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]int64{1: 8, 2: 200, 3: 400, 5: ext + 8, 6: ext + 308, 7: ext + 608} {
		if got, err := partitionOffset(card, n); err != nil || got != want*sectorSize {
			t.Errorf("partition %d: %d, %v; want %d", n, got, err, want*sectorSize)
		}
	}
	for _, n := range []int{4, 8, 0} {
		if got, err := partitionOffset(card, n); err == nil {
			t.Errorf("partition %d: %d, want an error", n, got)
		}
	}
}
