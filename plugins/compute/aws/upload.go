package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/drover-dev/drover/plugins/compute"
)

// upload is one snapshot's blocks on their way: PutSnapshotBlock for each non-zero block, from a
// bounded number of workers, then CompleteSnapshot with the count and the LINEAR checksum.
type upload struct {
	client   *ebs.Client
	snapshot string
	path     string
	blocks   []blockRef
	workers  int
	progress func(compute.PublishProgress)

	mu   sync.Mutex // guards sent and serializes progress calls
	sent int64
}

// total is the bytes the upload sends: every non-zero block, padded to the block size.
func (u *upload) total() int64 { return int64(len(u.blocks)) * blockSize }

func (u *upload) report(n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sent += n
	if u.progress != nil {
		u.progress(compute.PublishProgress{Phase: compute.PhaseUpload, Done: u.sent, Total: u.total()})
	}
}

// run sends the blocks and completes the snapshot. Every block is sent, also into a snapshot
// resumed after a killed publish: the EBS direct APIs cannot list the blocks of a snapshot not
// yet completed, and writing a block again replaces it. The SDK's retryer retries each request
// (throttling, 5xx); the first block that still fails stops the others and fails run, leaving
// the snapshot pending (see Publish for what happens to it).
func (u *upload) run(ctx context.Context) error {
	f, err := os.Open(u.path)
	if err != nil {
		return err
	}
	defer f.Close()
	u.report(0)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	digests := make([][sha256.Size]byte, len(u.blocks))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(u.workers, max(len(u.blocks), 1)) {
		wg.Go(func() {
			buf := make([]byte, blockSize)
			for i := range next {
				d, err := u.put(ctx, f, u.blocks[i], buf)
				if err != nil {
					cancel(err)
					continue
				}
				digests[i] = d
				u.report(blockSize)
			}
		})
	}
feed:
	for i := range u.blocks {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	_, err = u.client.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{
		SnapshotId:                aws.String(u.snapshot),
		ChangedBlocksCount:        aws.Int32(int32(len(u.blocks))),
		Checksum:                  aws.String(linearChecksum(digests)),
		ChecksumAlgorithm:         ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear,
	})
	if err != nil {
		return fmt.Errorf("completing snapshot %s: %w", u.snapshot, err)
	}
	return nil
}

// put sends one block with its SHA-256, which EBS checks.
func (u *upload) put(ctx context.Context, f *os.File, b blockRef, buf []byte) ([sha256.Size]byte, error) {
	d, err := readBlock(f, b, buf)
	if err != nil {
		return d, err
	}
	_, err = u.client.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
		SnapshotId:        aws.String(u.snapshot),
		BlockIndex:        aws.Int32(b.Index),
		BlockData:         bytes.NewReader(buf),
		DataLength:        aws.Int32(blockSize),
		Checksum:          aws.String(base64.StdEncoding.EncodeToString(d[:])),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	if err != nil {
		if ctxErr := context.Cause(ctx); ctxErr != nil && errors.Is(err, ctxErr) {
			return d, ctxErr
		}
		return d, fmt.Errorf("putting block %d of snapshot %s: %w", b.Index, u.snapshot, err)
	}
	return d, nil
}
