package aws

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// benchDisk is the disk the benchmarks publish: DROVER_BENCH_DISK (a raw image from the catalog,
// such as the web role's) or a synthetic sparse one: 256 MiB of which a quarter holds data (half
// of each written block random, half text, so it compresses as a real root file system partly
// does) and the rest is holes.
func benchDisk(b *testing.B) (path string, size, inUse int64) {
	b.Helper()
	if path = os.Getenv("DROVER_BENCH_DISK"); path == "" {
		path = b.TempDir() + "/sparse.raw"
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		const length = 256 << 20
		text := bytes.Repeat([]byte("server { listen 80; root /var/www; }\n"), blockSize/2/37+1)[:blockSize/2]
		block := make([]byte, blockSize)
		for off := int64(0); off < length; off += 4 * blockSize {
			rand.Read(block[:blockSize/2])
			copy(block[blockSize/2:], text)
			if _, err := f.WriteAt(block, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Truncate(length); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, st.Size(), st.Sys().(*syscall.Stat_t).Blocks * 512
}

// BenchmarkUpload publishes the bench disk's blocks to a local EBS block store (no added latency
// or bandwidth limit) and reports what went over the wire: bytes sent over the disk's bytes in
// use (goal <= 1: no zero block sent) and over its full length, and what the S3 + ImportSnapshot
// path would have to send for the same disk: the whole raw file (Format RAW), or a
// stream-optimized VMDK (Format VMDK, the only format ImportSnapshot accepts that compresses:
// deflate per 64 KiB grain, zero grains left out), estimated by compressing the grains.
func BenchmarkUpload(b *testing.B) {
	path, size, inUse := benchDisk(b)
	store, p := newUploadFixture(b, 0)
	p.workers = 16
	blocks, _, err := scanBlocks(path, size)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(blocks)) * blockSize)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		store.received.Store(0)
		u := &upload{client: p.c.ebs, snapshot: "snap-bench", path: path, blocks: blocks, workers: p.workers}
		if err := u.run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	sent := store.received.Load()
	b.ReportMetric(float64(sent)/float64(inUse), "sent/in-use")
	b.ReportMetric(float64(sent)/float64(size), "sent/length")
	b.ReportMetric(float64(sent)/(1<<20), "MiB-sent")
	b.ReportMetric(float64(inUse)/(1<<20), "MiB-in-use")
	b.ReportMetric(float64(size)/(1<<20), "MiB-length")
	vmdk := vmdkStreamBytes(b, path, size)
	b.ReportMetric(float64(vmdk)/(1<<20), "MiB-import-vmdk")
	b.ReportMetric(float64(vmdk)/float64(sent), "import-vmdk/sent")
	b.ReportMetric(float64(size)/float64(sent), "import-raw/sent")
	b.Logf("%s: length %d, in use %d, sent %d in %v (%.0f MiB/s); S3+ImportSnapshot would send %d (RAW) or about %d (stream-optimized VMDK)",
		path, size, inUse, sent, elapsed, float64(sent)/(1<<20)/elapsed.Seconds(), size, vmdk)
}

// vmdkStreamBytes estimates the size of a stream-optimized VMDK of the disk: each non-zero 64 KiB
// grain deflated behind a 12-byte marker and padded to a 512-byte sector, a 2 KiB grain table per
// 32 MiB that holds a grain (with its 512-byte marker), the grain directory and the header and
// footer sectors. It leaves out the embedded descriptor (under 1 KiB).
func vmdkStreamBytes(b *testing.B, path string, size int64) int64 {
	const grain, sector, gtCover = 64 << 10, 512, 32 << 20
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, grain)
	var out bytes.Buffer
	total := int64(3 * sector) // header, footer marker, footer
	tables := map[int64]bool{}
	for off := int64(0); off < size; off += grain {
		n, err := io.ReadFull(io.NewSectionReader(f, off, grain), buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			b.Fatal(err)
		}
		if allZero(buf[:n]) {
			continue
		}
		out.Reset()
		w, _ := zlib.NewWriterLevel(&out, zlib.DefaultCompression)
		w.Write(buf[:n])
		w.Close()
		total += (12 + int64(out.Len()) + sector - 1) / sector * sector
		tables[off/gtCover] = true
	}
	gd := (size + gtCover - 1) / gtCover * 4
	total += int64(len(tables))*(2048+sector) + (gd+sector-1)/sector*sector + sector
	return total
}
