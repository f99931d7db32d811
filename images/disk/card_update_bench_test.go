package disk

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/abslot"
)

// BenchmarkCardSlotUpdate measures an A/B update of a card made by AssembleCard: the bytes the
// write protocol carries (what SSH carries, less its framing) to bring slot b from one build to the
// next after a one-file change, over the slot's size, and the device's write and verify times on a
// card file. Run: go test ./images/disk -run '^$' -bench CardSlotUpdate -benchtime 1x
func BenchmarkCardSlotUpdate(b *testing.B) {
	if _, err := os.Stat("/usr/sbin/sfdisk"); err != nil {
		b.Skip("sfdisk is not installed")
	}
	dir := b.TempDir()
	// A tree like a small Pi role's: 200 MiB of incompressible files besides the firmware.
	files := map[string]string{
		"boot/vmlinuz-6.1.0-28-arm64": "K", "boot/initrd.img-6.1.0-28-arm64": "I",
		"boot/firmware/bootcode.bin": "bootcode", "boot/firmware/start.elf": strings.Repeat("S", 3<<20),
		"boot/firmware/fixup.dat": "fixup", "boot/firmware/bcm2837-rpi-3-b.dtb": "dtb",
		"boot/firmware/vmlinuz-6.1.0-28-arm64": strings.Repeat("K", 8<<20), "boot/firmware/initrd.img-6.1.0-28-arm64": strings.Repeat("I", 20<<20),
		"boot/firmware/config.txt": "arm_64bit=1\n", "etc/hostname": "pi\n",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		buf := make([]byte, 1<<20)
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("usr/lib/pkg%02d/file%03d", i/20, i)] = string(buf)
	}
	build := func(name string) CardResult {
		tree := filepath.Join(dir, name+"-tree")
		for p, c := range files {
			full := filepath.Join(tree, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		// The hygiene step clamps a real tree's mtimes to SOURCE_DATE_EPOCH; do the same.
		epoch := time.Unix(1700000000, 0)
		if err := filepath.Walk(tree, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chtimes(p, epoch, epoch)
		}); err != nil {
			b.Fatal(err)
		}
		res, err := AssembleCard(b.Context(), CardSpec{Tree: tree, Output: filepath.Join(dir, name+".img"),
			BundleDir: filepath.Join(dir, name+"-bundle"), RootUUID: testRootUUID, MinRootSize: 64 * mib,
			Headroom: Headroom{Bytes: 64 * mib}, SourceDateEpoch: time.Unix(1700000000, 0)})
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	v1 := build("v1")
	files["etc/motd"] = "version 2\n"
	v2 := build("v2")
	cmdline := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(cmdline, []byte("root=PARTUUID="+v1.DiskID+"-05\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	d := abslot.Device{Disk: v1.Path, Cmdline: cmdline}
	b.ResetTimer()
	var st abslot.SendStats
	for range b.N {
		toDev, fromSender := io.Pipe()
		toSender, fromDev := io.Pipe()
		errc := make(chan error, 1)
		go func() {
			err := d.Receive("b", toDev, fromDev)
			fromDev.CloseWithError(err)
			errc <- err
		}()
		var err error
		st, err = abslot.Send(filepath.Join(filepath.Dir(v2.Path), "v2-bundle"), "b", fromSender, toSender)
		fromSender.Close()
		if derr := <-errc; derr != nil {
			b.Fatal(derr)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(st.Bytes), "bytes-sent")
	b.ReportMetric(float64(st.SlotBytes), "slot-bytes")
	b.ReportMetric(100*float64(st.Bytes)/float64(st.SlotBytes), "sent-%")
	b.ReportMetric(st.Result.HashSeconds, "hash-s")
	b.ReportMetric(st.Result.WriteSeconds, "write-s")
	b.ReportMetric(st.Result.VerifySeconds, "verify-s")
	b.Logf("card %d MiB, slot %d MiB (boot %d + root %d): sent %d blocks, %d bytes (%.2f%%), received %d; device hash %.2fs, write %.2fs, verify %.2fs; whole %v",
		v1.Size>>20, st.SlotBytes>>20, v1.BootSize>>20, v1.RootSize>>20, st.Blocks, st.Bytes, 100*float64(st.Bytes)/float64(st.SlotBytes), st.Received,
		st.Result.HashSeconds, st.Result.WriteSeconds, st.Result.VerifySeconds, st.Elapsed)
}
