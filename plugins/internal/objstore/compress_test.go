package objstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
)

// sparseDisk writes a 16 MiB sparse file with a few extents of random data, as a raw disk with a
// small filesystem in it looks.
func sparseDisk(t *testing.T) (string, []byte) {
	t.Helper()
	const size = 16 << 20
	path := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	whole := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for _, ext := range [][2]int{{0, 4096}, {1 << 20, 300 << 10}, {8 << 20, 1 << 20}, {size - 512, 512}} {
		b := whole[ext[0] : ext[0]+ext[1]]
		for i := range b {
			b[i] = byte(r.Uint32() % 7) // compressible, like real data
		}
		if _, err := f.WriteAt(b, int64(ext[0])); err != nil {
			t.Fatal(err)
		}
	}
	return path, whole
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompressGzipIsFaithfulSmallAndDeterministic(t *testing.T) {
	raw, whole := sparseDisk(t)
	dir := t.TempDir()
	ctx := context.Background()
	n1, err := CompressGzip(ctx, raw, filepath.Join(dir, "a.raw.gz"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.raw.gz"))
	if n1 != int64(len(a)) {
		t.Errorf("CompressGzip returned %d bytes written, the file has %d", n1, len(a))
	}
	if got := gunzip(t, a); !bytes.Equal(got, whole) {
		t.Fatalf("decompressed %d bytes differ from the %d-byte disk", len(got), len(whole))
	}
	used, err := DiskUsage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if used >= int64(len(whole))/4 {
		t.Errorf("disk usage %d of a sparse %d-byte disk, want far less", used, len(whole))
	}
	if n1 > used {
		t.Errorf("compressed %d bytes, more than the %d in use", n1, used)
	}
	t.Logf("16 MiB sparse disk: %d bytes in use, %d compressed", used, n1)
	// A rerun gives the same bytes, so an interrupted upload of them resumes.
	if _, err := CompressGzip(ctx, raw, filepath.Join(dir, "b.raw.gz")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "b.raw.gz"))
	if !bytes.Equal(a, b) {
		t.Error("two compressions of one disk differ")
	}
}

func TestCompressGzipLeavesNothingWhenCancelled(t *testing.T) {
	raw, _ := sparseDisk(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CompressGzip(ctx, raw, filepath.Join(dir, "a.raw.gz")); err == nil {
		t.Fatal("CompressGzip with a cancelled context succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
	if _, err := CompressGzip(context.Background(), filepath.Join(dir, "missing"), filepath.Join(dir, "x")); err == nil {
		t.Error("CompressGzip of a missing file succeeded")
	}
}

// TestPublishPath is the path a DigitalOcean publish takes: compress, upload, presign, the
// platform fetches the URL and decompresses the disk, then the object is deleted.
func TestPublishPath(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	raw, whole := sparseDisk(t)
	gz := filepath.Join(t.TempDir(), "web.raw.gz")
	ctx := context.Background()
	if _, err := CompressGzip(ctx, raw, gz); err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(ctx, "web.raw.gz", gz, nil); err != nil {
		t.Fatal(err)
	}
	u, err := s.Presign(ctx, "web.raw.gz", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	status, body := get(t, http.DefaultClient, u)
	if status != 200 || !bytes.Equal(gunzip(t, body), whole) {
		t.Fatalf("the fetched image (%d, %d bytes) does not decompress to the disk", status, len(body))
	}
	if err := s.Delete(ctx, "web.raw.gz"); err != nil {
		t.Fatal(err)
	}
	if len(lab.Objects(bucket)) != 0 || len(lab.Uploads(bucket)) != 0 {
		t.Fatal("objects or uploads left after Delete")
	}
}
