package abslot

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The write protocol, over one SSH session running `drover-boot slot write SLOT` (stdin and stdout):
//
//  1. the sender writes a WriteRequest as one JSON line: the bundle's parts with their per-block
//     hashes, no data;
//  2. the device hashes the slot's partitions block by block and answers a Need line: for each part,
//     the indexes of the blocks that differ;
//  3. the device then answers an Index line and the running slot's chunk hashes (chunks.go);
//  4. the sender writes exactly the needed blocks, in order (part by part, ascending), each as
//     chunk operations: a chunk the running slot holds as a reference, any other as data;
//  5. the device assembles and checks each block and writes it, except a block in which a
//     referenced chunk changed since the index (the running root is in use); it answers an Again
//     line: those blocks, per part (often none);
//  6. the sender writes the blocks of Again as data only, no references;
//  7. the device writes them, syncs, reads the written blocks back, checks each against the
//     bundle's hash and answers a WriteResult line. Any failure is a message on stderr and a
//     non-zero exit instead.
//
// Nothing is sent for a block the slot already holds, so a rerun after a cut costs only what the
// cut left unwritten.

// WriteRequest is the sender's first line.
type WriteRequest struct {
	Slot      string       `json:"slot"`
	BlockSize int          `json:"block_size"`
	Parts     []BundlePart `json:"parts"` // File, CompressedSHA256 and CompressedSize are not used
}

// Need is the device's answer: the blocks to send, per part. The Again line is one too.
type Need struct {
	Blocks [][]int `json:"blocks"`
}

// WriteResult is the device's last line.
type WriteResult struct {
	Slot  string       `json:"slot"`
	Parts []PartResult `json:"parts"`
	// Again is how many blocks were sent a second time, as data, because a chunk they referenced
	// changed in the running slot before the device copied it.
	Again int `json:"again"`
	// HashSeconds, WriteSeconds and VerifySeconds time the device's three phases.
	HashSeconds, WriteSeconds, VerifySeconds float64
}

// PartResult is one written part.
type PartResult struct {
	Role      string `json:"role"`
	Partition int    `json:"partition"`
	Blocks    int    `json:"blocks"`  // in the part
	Written   int    `json:"written"` // of them, sent and written
	SHA256    string `json:"sha256"`  // the part's, once every block of the slot matched the bundle's hash of it
}

// SendStats is what Send sent.
type SendStats struct {
	Bytes      int64 // everything written to the device, request included
	Received   int64 // the running slot's index, read from the device
	Blocks     int   // blocks sent, those sent again included
	SlotBytes  int64 // the parts' total size: what a full write would send
	Result     WriteResult
	Elapsed    time.Duration
	NeedAfter  time.Duration // from the start to the device's Need line (its hashing)
	ResultWait time.Duration // from the last block sent to the device's result (its write and verify)
}

// Send is the sender's half: it reads the bundle in bundleDir, asks the device (to, its stdin; from,
// its stdout) which blocks of slot differ and sends only those. It does not close to. A failure
// leaves the slot partly written, which the device never boots unarmed; sending again completes it.
func Send(bundleDir, slot string, to io.Writer, from io.Reader) (SendStats, error) {
	start := time.Now()
	b, err := ReadBundle(bundleDir)
	if err != nil {
		return SendStats{}, err
	}
	var parts []BundlePart
	for _, p := range b.Parts {
		if p.Slot == "" || p.Slot == slot {
			parts = append(parts, p)
		}
	}
	b.Parts = parts
	cw := &countingWriter{w: to}
	req := WriteRequest{Slot: slot, BlockSize: b.BlockSize, Parts: b.Parts}
	line, err := json.Marshal(req)
	if err != nil {
		return SendStats{}, err
	}
	if _, err := cw.Write(append(line, '\n')); err != nil {
		return SendStats{}, fmt.Errorf("abslot: sending the request: %w", err)
	}
	rd := bufio.NewReader(from)
	var need Need
	if err := readLine(rd, &need); err != nil {
		return SendStats{}, fmt.Errorf("abslot: reading which blocks the device needs: %w", err)
	}
	if len(need.Blocks) != len(b.Parts) {
		return SendStats{}, fmt.Errorf("abslot: the device asked for blocks of %d parts, the bundle has %d", len(need.Blocks), len(b.Parts))
	}
	var idx Index
	if err := readLine(rd, &idx); err != nil {
		return SendStats{}, fmt.Errorf("abslot: reading the running slot's index: %w", err)
	}
	if len(idx.Chunks) != len(b.Parts) {
		return SendStats{}, fmt.Errorf("abslot: the device indexed %d parts, the bundle has %d", len(idx.Chunks), len(b.Parts))
	}
	indexes := make([]map[chunkKey]uint32, len(b.Parts))
	for i, n := range idx.Chunks {
		if indexes[i], err = readIndex(rd, n); err != nil {
			return SendStats{}, err
		}
	}
	st := SendStats{NeedAfter: time.Since(start)}
	for _, n := range idx.Chunks {
		st.Received += int64(n) * chunkHashLen
	}
	bw := bufio.NewWriterSize(cw, 1<<20)
	for i, p := range b.Parts {
		st.SlotBytes += p.Size
		n, err := sendPart(filepath.Join(bundleDir, p.File), p, b.BlockSize, need.Blocks[i], indexes[i], bw)
		st.Blocks += n
		if err != nil {
			return st, err
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("abslot: sending blocks: %w", err)
	}
	var again Need
	if err := readLine(rd, &again); err != nil {
		return st, fmt.Errorf("abslot: reading which blocks the device needs again: %w", err)
	}
	if len(again.Blocks) != len(b.Parts) {
		return st, fmt.Errorf("abslot: the device asked again for blocks of %d parts, the bundle has %d", len(again.Blocks), len(b.Parts))
	}
	for i, p := range b.Parts {
		n, err := sendPart(filepath.Join(bundleDir, p.File), p, b.BlockSize, again.Blocks[i], nil, bw)
		st.Blocks += n
		if err != nil {
			return st, err
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("abslot: sending blocks again: %w", err)
	}
	sent := time.Now()
	if err := readLine(rd, &st.Result); err != nil {
		return st, fmt.Errorf("abslot: reading the device's result: %w", err)
	}
	st.ResultWait = time.Since(sent)
	st.Bytes = cw.n
	st.Elapsed = time.Since(start)
	return st, nil
}

// ReadBundle reads the manifest of the bundle in dir.
func ReadBundle(dir string) (*Bundle, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("abslot: bundle: %w", err)
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("abslot: bundle %s: %w", dir, err)
	}
	if b.Version != 1 || b.BlockSize <= 0 || len(b.Parts) == 0 {
		return nil, fmt.Errorf("abslot: bundle %s: version %d, block size %d, %d parts: want version 1 with parts", dir, b.Version, b.BlockSize, len(b.Parts))
	}
	for _, p := range b.Parts {
		if int64(len(p.Blocks)) != blockCount(p.Size, b.BlockSize) {
			return nil, fmt.Errorf("abslot: bundle %s: part %s has %d block hashes for %d bytes", dir, p.Role, len(p.Blocks), p.Size)
		}
	}
	return &b, nil
}

func blockCount(size int64, bs int) int64 { return (size + int64(bs) - 1) / int64(bs) }

// sendPart streams the compressed image and writes the blocks of want (ascending).
func sendPart(path string, p BundlePart, bs int, want []int, index map[chunkKey]uint32, w io.Writer) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("abslot: bundle part %s: %w", p.Role, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("abslot: bundle part %s: %w", p.Role, err)
	}
	buf := make([]byte, bs)
	sent, idx := 0, 0
	for _, want := range want {
		if want < idx || int64(want) >= blockCount(p.Size, bs) {
			return sent, fmt.Errorf("abslot: the device asked for block %d of part %s out of order or range", want, p.Role)
		}
		for ; idx <= want; idx++ {
			n := min(int64(bs), p.Size-int64(idx)*int64(bs))
			if _, err := io.ReadFull(zr, buf[:n]); err != nil {
				return sent, fmt.Errorf("abslot: bundle part %s, block %d: %w", p.Role, idx, err)
			}
			if idx == want {
				if err := writeBlock(w, buf[:n], index); err != nil {
					return sent, fmt.Errorf("abslot: sending block %d of part %s: %w", idx, p.Role, err)
				}
				sent++
			}
		}
	}
	return sent, nil
}

func readLine(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
