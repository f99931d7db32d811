package aws

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeDisk writes data to a file and returns its path.
func writeDisk(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScanBlocksSkipsZeroBlocks(t *testing.T) {
	// Blocks: 0 random, 1 zero, 2 one non-zero byte at its end, 3 zero, 4 short (half a block)
	// with one non-zero byte.
	size := int64(4*blockSize + blockSize/2)
	data := make([]byte, size)
	rand.Read(data[:blockSize])
	data[3*blockSize-1] = 1
	data[4*blockSize+7] = 9
	refs, sum, err := scanBlocks(writeDisk(t, data), size)
	if err != nil {
		t.Fatal(err)
	}
	want := []blockRef{
		{Index: 0, Off: 0, Len: blockSize},
		{Index: 2, Off: 2 * blockSize, Len: blockSize},
		{Index: 4, Off: 4 * blockSize, Len: blockSize / 2},
	}
	if !slices.Equal(refs, want) {
		t.Errorf("scanBlocks = %+v, want %+v", refs, want)
	}
	if h := sha256.Sum256(data); sum != hex.EncodeToString(h[:]) {
		t.Errorf("sha256 = %s, want %x", sum, h)
	}
}

func TestScanBlocksAllZero(t *testing.T) {
	size := int64(3 * blockSize)
	refs, _, err := scanBlocks(writeDisk(t, make([]byte, size)), size)
	if err != nil || len(refs) != 0 {
		t.Errorf("scanBlocks of a zero disk = %+v, %v; want no blocks", refs, err)
	}
}

func TestScanBlocksRefusesWrongSize(t *testing.T) {
	path := writeDisk(t, make([]byte, blockSize))
	if _, _, err := scanBlocks(path, blockSize+1); err == nil {
		t.Error("scanBlocks with the wrong size: no error")
	}
	if _, _, err := scanBlocks(filepath.Join(t.TempDir(), "missing"), 1); err == nil {
		t.Error("scanBlocks of a missing file: no error")
	}
}

func TestReadBlockPadsShortBlock(t *testing.T) {
	data := bytes.Repeat([]byte{7}, blockSize+100)
	f, err := os.Open(writeDisk(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xff}, blockSize) // stale bytes from a previous block
	d, err := readBlock(f, blockRef{Index: 1, Off: blockSize, Len: 100}, buf)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, blockSize)
	copy(want, data[blockSize:])
	if !bytes.Equal(buf, want) {
		t.Error("the short last block is not zero-padded to the block size")
	}
	if d != sha256.Sum256(want) {
		t.Error("readBlock's digest is not the padded block's")
	}
}

func TestLinearChecksum(t *testing.T) {
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	// The documented LINEAR method: SHA-256 over the blocks' digests in block order.
	whole := sha256.Sum256(append(a[:], b[:]...))
	if got, want := linearChecksum([][sha256.Size]byte{a, b}), base64.StdEncoding.EncodeToString(whole[:]); got != want {
		t.Errorf("linearChecksum = %s, want %s", got, want)
	}
	if linearChecksum([][sha256.Size]byte{b, a}) == linearChecksum([][sha256.Size]byte{a, b}) {
		t.Error("linearChecksum ignores the blocks' order")
	}
}

func TestVolumeGiB(t *testing.T) {
	for size, want := range map[int64]int64{1: 1, gib: 1, gib + 1: 2, 3*gib - 5: 3, 8 * gib: 8} {
		if got := volumeGiB(size); got != want {
			t.Errorf("volumeGiB(%d) = %d, want %d", size, got, want)
		}
	}
}
