package abslot

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// errStaleChunk is readBlock's answer when a referenced chunk of the running slot no longer has
// the hash it was indexed with. The block's operations were all read: the stream is still in step.
var errStaleChunk = errors.New("abslot: a chunk of the running slot changed since it was indexed")

// Within a block the device needs, the data goes in chunks of ChunkSize, ext4's block size. A
// file added to the tree makes mkfs.ext4 -d place everything after it a few 4 KiB blocks further
// on, so after such a change most 1 MiB blocks differ while most of their 4 KiB chunks are still on
// the card, in the running slot, only elsewhere. The device sends an index of the running slot's
// chunks (an 8-byte hash prefix each); the sender then sends a chunk found there as a reference
// (its index and hash, 13 bytes) and any other as data. The device checks every referenced
// chunk's hash as it copies it: the running root is mounted and written while the device indexes
// it and copies from it (a Pi that is still booting writes its journal), so a referenced chunk may
// have changed. Such a block is not written; the device asks for it again as data once the
// other blocks are in (proto.go). Every block's sha256 is checked once assembled.
const ChunkSize = 4096

const chunkHashLen = 8

// Chunk operations in the block stream.
const (
	opData byte = 'D' // ChunkSize bytes follow (fewer for a part's short last chunk)
	opCopy byte = 'C' // a uint32 chunk index in the running slot's partition and the 8-byte hash
)

type chunkKey [chunkHashLen]byte

func chunkHash(b []byte) chunkKey {
	s := sha256.Sum256(b)
	return chunkKey(s[:chunkHashLen])
}

// Index is the device's answer after Need: how many chunk hashes follow, per part, raw.
type Index struct {
	Chunks []int `json:"chunks"`
}

// hashChunks reads n chunks of r from off and writes their hash prefixes to w.
func hashChunks(r io.ReaderAt, off int64, n int, w io.Writer) error {
	buf := make([]byte, 256*ChunkSize)
	for i := 0; i < n; {
		k := min(256, n-i)
		if _, err := r.ReadAt(buf[:k*ChunkSize], off+int64(i)*ChunkSize); err != nil {
			return fmt.Errorf("abslot: indexing the running slot: %w", err)
		}
		for j := range k {
			h := chunkHash(buf[j*ChunkSize : (j+1)*ChunkSize])
			if _, err := w.Write(h[:]); err != nil {
				return err
			}
		}
		i += k
	}
	return nil
}

// readIndex reads n hash prefixes into a map to the first chunk index of each.
func readIndex(r *bufio.Reader, n int) (map[chunkKey]uint32, error) {
	m := make(map[chunkKey]uint32, n)
	var k chunkKey
	for i := range n {
		if _, err := io.ReadFull(r, k[:]); err != nil {
			return nil, fmt.Errorf("abslot: reading the running slot's index: %w", err)
		}
		if _, ok := m[k]; !ok {
			m[k] = uint32(i)
		}
	}
	return m, nil
}

// writeBlock sends one block as chunk operations.
func writeBlock(w io.Writer, block []byte, index map[chunkKey]uint32) error {
	var op [1 + 4 + chunkHashLen]byte
	for off := 0; off < len(block); off += ChunkSize {
		c := block[off:min(off+ChunkSize, len(block))]
		if len(c) == ChunkSize {
			h := chunkHash(c)
			if at, ok := index[h]; ok {
				op[0] = opCopy
				binary.LittleEndian.PutUint32(op[1:], at)
				copy(op[5:], h[:])
				if _, err := w.Write(op[:]); err != nil {
					return err
				}
				continue
			}
		}
		if _, err := w.Write([]byte{opData}); err != nil {
			return err
		}
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	return nil
}

// readBlock assembles one block of len(buf) bytes from chunk operations, copying references from
// src (the running slot's partition, n chunks long). When a referenced chunk changed since the
// index, it reads the rest of the block's operations and returns errStaleChunk.
func readBlock(r *bufio.Reader, buf []byte, src io.ReaderAt, srcOff int64, n int) error {
	var op [1 + 4 + chunkHashLen]byte
	stale := false
	for off := 0; off < len(buf); off += ChunkSize {
		c := buf[off:min(off+ChunkSize, len(buf))]
		if _, err := io.ReadFull(r, op[:1]); err != nil {
			return err
		}
		switch op[0] {
		case opData:
			if _, err := io.ReadFull(r, c); err != nil {
				return err
			}
		case opCopy:
			if _, err := io.ReadFull(r, op[1:]); err != nil {
				return err
			}
			at := binary.LittleEndian.Uint32(op[1:])
			if int(at) >= n || len(c) != ChunkSize {
				return fmt.Errorf("abslot: a reference to chunk %d of the running slot, which has %d", at, n)
			}
			if _, err := src.ReadAt(c, srcOff+int64(at)*ChunkSize); err != nil {
				return fmt.Errorf("abslot: copying chunk %d of the running slot: %w", at, err)
			}
			if h := chunkHash(c); string(h[:]) != string(op[5:]) {
				stale = true
			}
		default:
			return fmt.Errorf("abslot: unknown chunk operation %q in the block stream", op[0])
		}
	}
	if stale {
		return errStaleChunk
	}
	return nil
}
