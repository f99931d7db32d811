package awslab

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
)

// BenchmarkPutSnapshotBlock is the fake's block intake with 8 uploaders through the real SDK
// client, signature and checksum checks included: what a publish on the fake costs beyond the
// publisher's own work.
func BenchmarkPutSnapshotBlock(b *testing.B) {
	c := New(b, Options{})
	_, cl := defaultClients(c)
	st, err := cl.StartSnapshot(context.Background(), &ebs.StartSnapshotInput{VolumeSize: aws.Int64(64)})
	if err != nil {
		b.Fatal(err)
	}
	data := block(0x5A)
	sum := checksum(data)
	var next atomic.Int32
	b.SetBytes(BlockSize)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + 7) / 8
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				idx := next.Add(1) % (64 * 2048)
				if _, err := cl.PutSnapshotBlock(context.Background(), &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(idx),
					BlockData: bytes.NewReader(data), DataLength: aws.Int32(BlockSize), Checksum: aws.String(sum),
					ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
