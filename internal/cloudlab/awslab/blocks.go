package awslab

// The EBS direct APIs' block actions: PutSnapshotBlock, CompleteSnapshot, ListSnapshotBlocks and
// GetSnapshotBlock (see ebs.go for the API version and what is left out).

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// writable is the snapshot id if it takes blocks; c.mu is held.
func (c *Cloud) writable(id string) (*snapshot, *ebsError) {
	s := c.snapshots[id]
	if s == nil {
		return nil, notFound(id)
	}
	c.expire(s)
	if s.state != "pending" || s.sealed {
		return nil, validation("INVALID_PARAMETER_VALUE", "The snapshot %s is in state %s and takes no more blocks.", id, s.state)
	}
	return s, nil
}

// putSnapshotBlock writes one block after checking its length and checksum headers against the
// body, as EBS does: the body is not signed, the checksum is.
func (c *Cloud) putSnapshotBlock(w http.ResponseWriter, r *http.Request, id, index string, body []byte) (int, *ebsError) {
	idx, err := strconv.ParseInt(index, 10, 32)
	if err != nil || idx < 0 {
		return 0, validation("INVALID_BLOCK", "BlockIndex %q is not a block index", index)
	}
	length, err := strconv.Atoi(r.Header.Get("X-Amz-Data-Length"))
	switch {
	case err != nil || length != BlockSize:
		return 0, validation("INVALID_PARAMETER_VALUE", "x-amz-Data-Length must be %d, got %q", BlockSize, r.Header.Get("X-Amz-Data-Length"))
	case len(body) != length:
		return 0, validation("INVALID_BLOCK", "the block is %d bytes, x-amz-Data-Length says %d", len(body), length)
	case r.Header.Get("X-Amz-Checksum-Algorithm") != "SHA256":
		return 0, validation("INVALID_PARAMETER_VALUE", "x-amz-Checksum-Algorithm must be SHA256, got %q", r.Header.Get("X-Amz-Checksum-Algorithm"))
	}
	if p := r.Header.Get("X-Amz-Progress"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 100 {
			return 0, validation("INVALID_PARAMETER_VALUE", "x-amz-Progress must be a percentage, got %q", p)
		}
	}
	sum := sha256.Sum256(body)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if r.Header.Get("X-Amz-Checksum") != want {
		return 0, validation("INVALID_BLOCK", "The checksum %q of block %d does not match the block's data.", r.Header.Get("X-Amz-Checksum"), idx)
	}
	c.mu.Lock()
	s, e := c.writable(id)
	if e == nil && idx >= s.volumeSize*gib/BlockSize {
		e = validation("INVALID_BLOCK", "BlockIndex %d is beyond the volume's %d GiB", idx, s.volumeSize)
	}
	var f *os.File
	if e == nil {
		f = s.file
	}
	c.mu.Unlock()
	if e != nil {
		return 0, e
	}
	if _, err := f.WriteAt(body, idx*BlockSize); err != nil {
		return 0, &ebsError{http.StatusInternalServerError, "InternalServerException", err.Error(), ""}
	}
	c.mu.Lock()
	s.sums[int32(idx)] = sum
	c.ebsBytes += int64(len(body))
	c.mu.Unlock()
	w.Header().Set("X-Amz-Checksum", want)
	w.Header().Set("X-Amz-Checksum-Algorithm", "SHA256")
	return http.StatusCreated, nil
}

// completeSnapshot seals a snapshot. ChangedBlocksCount must be the number of blocks written;
// the checksum, when given, is checked as AWS computes it with the LINEAR method: SHA-256 over
// the written blocks' SHA-256 digests (32 bytes each, not their base64) in ascending block
// index order, base64-encoded. That is what AWS's own coldsnap sends and AWS accepts.
func (c *Cloud) completeSnapshot(r *http.Request, id string) (int, any, *ebsError) {
	count, err := strconv.Atoi(r.Header.Get("X-Amz-ChangedBlocksCount"))
	if err != nil || count < 0 {
		return 0, nil, validation("INVALID_PARAMETER_VALUE", "x-amz-ChangedBlocksCount must be a count, got %q", r.Header.Get("X-Amz-ChangedBlocksCount"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, e := c.writable(id)
	if e != nil {
		return 0, nil, e
	}
	if count != len(s.sums) {
		return 0, nil, validation("INVALID_PARAMETER_VALUE", "ChangedBlocksCount is %d but %d blocks were written to %s", count, len(s.sums), id)
	}
	if sum := r.Header.Get("X-Amz-Checksum"); sum != "" {
		if a := r.Header.Get("X-Amz-Checksum-Algorithm"); a != "SHA256" {
			return 0, nil, validation("INVALID_PARAMETER_VALUE", "x-amz-Checksum-Algorithm must be SHA256, got %q", a)
		}
		if m := r.Header.Get("X-Amz-Checksum-Aggregation-Method"); m != "LINEAR" {
			return 0, nil, validation("INVALID_PARAMETER_VALUE", "x-amz-Checksum-Aggregation-Method must be LINEAR, got %q", m)
		}
		if want := linearChecksum(s.sums); sum != want {
			return 0, nil, validation("INVALID_PARAMETER_VALUE", "The aggregated checksum %q does not match the blocks written to %s.", sum, id)
		}
	}
	s.sealed = true
	s.pendingPolls = c.opts.SnapshotPendingPolls
	if s.pendingPolls == 0 {
		s.state = "completed"
	}
	return http.StatusAccepted, map[string]string{"Status": s.state}, nil
}

// linearChecksum is the LINEAR aggregation of the blocks' checksums.
func linearChecksum(sums map[int32][sha256.Size]byte) string {
	h := sha256.New()
	for _, i := range sortedKeys(sums) {
		d := sums[i]
		h.Write(d[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

type listBlocksResponse struct {
	BlockSize  int32      `json:"BlockSize"`
	Blocks     []ebsBlock `json:"Blocks"`
	ExpiryTime float64    `json:"ExpiryTime"`
	NextToken  string     `json:"NextToken,omitempty"`
	VolumeSize int64      `json:"VolumeSize"`
}

type ebsBlock struct {
	BlockIndex int32  `json:"BlockIndex"`
	BlockToken string `json:"BlockToken"`
}

// listSnapshotBlocks lists a completed snapshot's written blocks from startingBlockIndex, a page
// of maxResults (100 to 10000, default 10000) at a time.
func (c *Cloud) listSnapshotBlocks(r *http.Request, id string) (int, any, *ebsError) {
	q := r.URL.Query()
	maxResults, start := 10000, int64(0)
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 10000 {
			return 0, nil, validation("INVALID_PARAMETER_VALUE", "maxResults must be between 100 and 10000, got %q", v)
		}
		maxResults = n
	}
	for _, k := range []string{"startingBlockIndex", "pageToken"} {
		if v := q.Get(k); v != "" {
			n, err := strconv.ParseInt(strings.TrimPrefix(v, "page-"), 10, 32)
			if err != nil || n < 0 {
				return 0, nil, validation("INVALID_PAGE_TOKEN", "%s %q is not valid", k, v)
			}
			start = max(start, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snapshots[id]
	if s == nil {
		return 0, nil, notFound(id)
	}
	if s.state != "completed" {
		return 0, nil, validation("INVALID_SNAPSHOT_ID", "The snapshot %s is %s, not completed.", id, s.state)
	}
	out := listBlocksResponse{BlockSize: BlockSize, VolumeSize: s.volumeSize, Blocks: []ebsBlock{},
		ExpiryTime: float64(time.Now().Add(time.Hour).Unix())}
	for _, i := range sortedKeys(s.sums) {
		if int64(i) < start {
			continue
		}
		if len(out.Blocks) == maxResults {
			out.NextToken = "page-" + strconv.Itoa(int(i))
			break
		}
		out.Blocks = append(out.Blocks, ebsBlock{i, blockToken(s.id, i)})
	}
	return http.StatusOK, out, nil
}

func blockToken(id string, i int32) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s/%d", id, i)))
}

// getSnapshotBlock answers one block of a completed snapshot with its checksum.
func (c *Cloud) getSnapshotBlock(w http.ResponseWriter, id, index string) *ebsError {
	idx, err := strconv.ParseInt(index, 10, 32)
	if err != nil || idx < 0 {
		return validation("INVALID_BLOCK", "BlockIndex %q is not a block index", index)
	}
	c.mu.Lock()
	s := c.snapshots[id]
	var f *os.File
	var sum [sha256.Size]byte
	var written bool
	if s != nil {
		f = s.file
		sum, written = s.sums[int32(idx)]
	}
	c.mu.Unlock()
	switch {
	case s == nil:
		return notFound(id)
	case !written:
		return validation("INVALID_BLOCK_TOKEN", "block %d of %s was never written", idx, id)
	}
	buf := make([]byte, BlockSize)
	if _, err := f.ReadAt(buf, idx*BlockSize); err != nil {
		return &ebsError{http.StatusInternalServerError, "InternalServerException", err.Error(), ""}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Amz-Checksum", base64.StdEncoding.EncodeToString(sum[:]))
	w.Header().Set("X-Amz-Checksum-Algorithm", "SHA256")
	w.Header().Set("X-Amz-Data-Length", strconv.Itoa(BlockSize))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, bytes.NewReader(buf))
	return nil
}
