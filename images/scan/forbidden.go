package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/drover-dev/drover/plugins/secrets"
)

// RuleForbidden is the rule name of a forbidden value found (Options.Forbidden).
const RuleForbidden = "forbidden-value"

// forbiddenValue is one value of Options.Forbidden to look for, with what may be said about it.
type forbiddenValue struct {
	n      int    // 1-based position in Options.Forbidden
	value  []byte // never printed
	prefix string // the first 8 hex digits of the value's sha256
}

// forbiddenValues keeps the values worth looking for: not empty, at least minLen bytes, each value
// once (under its first position). It returns how many it left out for being short.
func forbiddenValues(in []secrets.Secret, minLen int) ([]forbiddenValue, int) {
	if minLen <= 0 {
		minLen = DefaultMinForbidden
	}
	var out []forbiddenValue
	seen := map[[sha256.Size]byte]bool{}
	short := 0
	for i, s := range in {
		v := []byte(s.Reveal())
		if len(v) < minLen {
			short++
			continue
		}
		sum := sha256.Sum256(v)
		if seen[sum] {
			continue
		}
		seen[sum] = true
		out = append(out, forbiddenValue{n: i + 1, value: v, prefix: hex.EncodeToString(sum[:4])})
	}
	return out, short
}

// hit is where a forbidden value was first found in one file, and how often it occurs there.
type hit struct {
	v      *forbiddenValue
	offset int64
	count  int
}

func (h hit) excerpt() string {
	s := fmt.Sprintf("value of secret #%d (sha256 prefix %s)", h.v.n, h.v.prefix)
	if h.count > 1 {
		s += fmt.Sprintf(", %d occurrences", h.count)
	}
	return s
}

// findForbidden searches a file's content for every forbidden value.
func (s *scanner) findForbidden(content []byte) []hit {
	var hits []hit
	for i := range s.forbidden {
		v := &s.forbidden[i]
		if at := bytes.Index(content, v.value); at >= 0 {
			hits = append(hits, hit{v: v, offset: int64(at), count: 1 + bytes.Count(content[at+1:], v.value)})
		}
	}
	return hits
}

// streamChunk is how much of a large file or a disk is read at a time.
const streamChunk = 4 << 20

// whence values of lseek(2) for sparse files (Linux, and most Unix systems); where they are not
// supported Seek fails and the whole file is read.
const (
	seekData = 3
	seekHole = 4
)

// streamForbidden reads f (of the given size) in chunks overlapping by the longest value less one
// byte, so that a value across a chunk boundary is found once, and returns the first offset and the
// count of each value found, and the bytes read. Holes of a sparse file are skipped: they read as
// zeros, and no value is zeros.
func (s *scanner) streamForbidden(ctx context.Context, f *os.File, size int64) ([]hit, int64, error) {
	overlap := max(s.maxValLen-1, 0)
	buf := make([]byte, overlap+streamChunk)
	found := map[int]*hit{}
	var order []int
	var read int64
	pos := int64(0)
	for pos < size {
		start, end := pos, size
		if d, err := f.Seek(pos, seekData); err == nil {
			if d >= size {
				break
			}
			start = d
			if h, err := f.Seek(d, seekHole); err == nil && h > d {
				end = min(h, size)
			}
		} else if errors.Is(err, syscall.ENXIO) {
			break // no data after pos: the rest is a hole
		}
		carry := 0
		for at := start; at < end; {
			if err := ctx.Err(); err != nil {
				return nil, read, context.Cause(ctx)
			}
			n := int(min(int64(streamChunk), end-at))
			got, err := f.ReadAt(buf[carry:carry+n], at)
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, read, unwrapPath(err)
			}
			window := buf[:carry+got]
			base := at - int64(carry)
			for i := range s.forbidden {
				v := &s.forbidden[i]
				for off := 0; ; {
					j := bytes.Index(window[off:], v.value)
					if j < 0 {
						break
					}
					j += off
					off = j + 1
					if j+len(v.value) <= carry {
						continue // wholly in the carried bytes: counted in the previous window
					}
					if h, ok := found[i]; ok {
						h.count++
					} else {
						found[i] = &hit{v: v, offset: base + int64(j), count: 1}
						order = append(order, i)
					}
				}
			}
			read += int64(got)
			if got < n {
				end = at + int64(got) // the file shrank
				break
			}
			at += int64(got)
			keep := min(overlap, len(window))
			copy(buf, window[len(window)-keep:])
			carry = keep
		}
		pos = end
	}
	hits := make([]hit, 0, len(order))
	for _, i := range order {
		hits = append(hits, *found[i])
	}
	return hits, read, nil
}
