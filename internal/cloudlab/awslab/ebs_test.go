package awslab

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestPublishRegisterDescribeDelete(t *testing.T) {
	c := New(t, Options{})
	e, b := defaultClients(c)
	ctx := context.Background()
	blocks := map[int32][]byte{0: block(1), 7: block(2), 2047: block(3)}
	snap, ami := publish(t, e, b, "web-1", "x86_64", 1, blocks)

	if got := c.BytesReceived(); got != 3*BlockSize {
		t.Errorf("BytesReceived = %d, want %d", got, 3*BlockSize)
	}
	ds, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:drover:image"), Values: []string{"web-*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Snapshots) != 1 || *ds.Snapshots[0].SnapshotId != snap || ds.Snapshots[0].State != ec2types.SnapshotStateCompleted || *ds.Snapshots[0].VolumeSize != 1 {
		t.Fatalf("DescribeSnapshots = %+v, want %s completed, 1 GiB", ds.Snapshots, snap)
	}
	di, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:drover:image"), Values: []string{"web-1"}}, {Name: aws.String("state"), Values: []string{"available"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(di.Images) != 1 {
		t.Fatalf("DescribeImages found %d images, want 1", len(di.Images))
	}
	im := di.Images[0]
	if *im.ImageId != ami || im.Architecture != ec2types.ArchitectureValuesX8664 || *im.RootDeviceName != "/dev/xvda" ||
		im.BootMode != ec2types.BootModeValuesUefiPreferred || im.ImdsSupport != ec2types.ImdsSupportValuesV20 || !*im.EnaSupport ||
		len(im.BlockDeviceMappings) != 1 || *im.BlockDeviceMappings[0].Ebs.SnapshotId != snap || im.BlockDeviceMappings[0].Ebs.VolumeType != ec2types.VolumeTypeGp3 ||
		len(im.Tags) != 1 || *im.Tags[0].Value != "web-1" {
		t.Fatalf("DescribeImages answered %+v", im)
	}
	// The same name again is refused; another account's images are not listed.
	_, err = e.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("web-1"), Architecture: "x86_64", RootDeviceName: aws.String("/dev/xvda"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap)}}}})
	wantCode(t, "RegisterImage of a used name", err, "InvalidAMIName.Duplicate")
	if di, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}}); err != nil || len(di.Images) != 0 {
		t.Fatalf("DescribeImages(Owners amazon) = %v, %v; want none", di, err)
	}
	_, err = e.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}})
	wantCode(t, "DescribeImages of an unknown image", err, "InvalidAMIID.NotFound")

	// The blocks read back as written, and list in pages.
	lb, err := b.ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(snap)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.Blocks) != 3 || *lb.Blocks[2].BlockIndex != 2047 || *lb.VolumeSize != 1 || *lb.BlockSize != BlockSize {
		t.Fatalf("ListSnapshotBlocks = %+v", lb)
	}
	gb, err := b.GetSnapshotBlock(ctx, &ebs.GetSnapshotBlockInput{SnapshotId: aws.String(snap), BlockIndex: aws.Int32(7), BlockToken: lb.Blocks[1].BlockToken})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(gb.BlockData)
	if !bytes.Equal(got.Bytes(), block(2)) || *gb.Checksum != checksum(block(2)) {
		t.Fatalf("GetSnapshotBlock 7 answered other data or checksum")
	}

	_, err = e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
	wantCode(t, "DeleteSnapshot of a snapshot an AMI uses", err, "InvalidSnapshot.InUse")
	if _, err := e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); err != nil {
		t.Fatal(err)
	}
	if len(c.Images()) != 0 || len(c.Snapshots()) != 0 {
		t.Fatalf("left behind: images %v, snapshots %v", c.Images(), c.Snapshots())
	}
	_, err = e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
	wantCode(t, "DeleteSnapshot again", err, "InvalidSnapshot.NotFound")
}

func TestListSnapshotBlocksPages(t *testing.T) {
	c := New(t, Options{})
	e, b := defaultClients(c)
	blocks := map[int32][]byte{}
	for i := int32(0); i < 103; i++ {
		blocks[i*3] = block(byte(i + 1))
	}
	snap, _ := publish(t, e, b, "paged", "arm64", 1, blocks)
	var seen []int32
	p := ebs.NewListSnapshotBlocksPaginator(b, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(snap), MaxResults: aws.Int32(100)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, bl := range out.Blocks {
			seen = append(seen, *bl.BlockIndex)
		}
	}
	if pages != 2 || len(seen) != 103 || seen[102] != 306 {
		t.Fatalf("%d pages, blocks %v; want 2 pages of 103 blocks ending at 306", pages, seen)
	}
}

func TestStartSnapshotClientToken(t *testing.T) {
	c := New(t, Options{})
	_, b := defaultClients(c)
	ctx := context.Background()
	in := &ebs.StartSnapshotInput{VolumeSize: aws.Int64(2), ClientToken: aws.String("image-abc"), Timeout: aws.Int32(30),
		Tags: []ebstypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}
	one, err := b.StartSnapshot(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	two, err := b.StartSnapshot(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if *one.SnapshotId != *two.SnapshotId || one.Status != ebstypes.StatusPending || *one.BlockSize != BlockSize || len(one.Tags) != 1 {
		t.Fatalf("StartSnapshot twice with one token: %+v and %+v", one, two)
	}
	in.VolumeSize = aws.Int64(3)
	_, err = b.StartSnapshot(ctx, in)
	wantCode(t, "StartSnapshot with the token and another size", err, "ConflictException")
	_, err = b.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(0)})
	wantCode(t, "StartSnapshot of 0 GiB", err, "ValidationException")
	if n := len(c.Snapshots()); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
}

func TestChecksumsChecked(t *testing.T) {
	c := New(t, Options{})
	e, b := defaultClients(c)
	ctx := context.Background()
	st, err := b.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	data := block(9)
	_, err = b.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(1),
		BlockData: bytes.NewReader(data), DataLength: aws.Int32(BlockSize), Checksum: aws.String(checksum(block(8))),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256})
	wantCode(t, "PutSnapshotBlock of a corrupted block", err, "ValidationException")
	_, err = b.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(2048),
		BlockData: bytes.NewReader(data), DataLength: aws.Int32(BlockSize), Checksum: aws.String(checksum(data)),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256})
	wantCode(t, "PutSnapshotBlock beyond the volume", err, "ValidationException")
	put(t, b, *st.SnapshotId, 1, data)
	put(t, b, *st.SnapshotId, 0, block(7))
	complete := func(n int32, sum string) error {
		_, err := b.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: st.SnapshotId, ChangedBlocksCount: aws.Int32(n), Checksum: aws.String(sum),
			ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256, ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear})
		return err
	}
	wantCode(t, "CompleteSnapshot with the blocks' checksums out of index order", complete(2, linear(data, block(7))), "ValidationException")
	wantCode(t, "CompleteSnapshot with a wrong block count", complete(3, linear(block(7), data)), "ValidationException")
	if err := complete(2, linear(block(7), data)); err != nil {
		t.Fatalf("CompleteSnapshot with the right checksum: %v", err)
	}
	err = complete(2, linear(block(7), data))
	wantCode(t, "CompleteSnapshot twice", err, "ValidationException")
	put := func() error {
		_, err := b.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(3),
			BlockData: bytes.NewReader(data), DataLength: aws.Int32(BlockSize), Checksum: aws.String(checksum(data)),
			ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256})
		return err
	}
	wantCode(t, "PutSnapshotBlock to a completed snapshot", put(), "ValidationException")
	ds, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*st.SnapshotId}})
	if err != nil || ds.Snapshots[0].State != ec2types.SnapshotStateCompleted {
		t.Fatalf("DescribeSnapshots: %v %v", ds, err)
	}
}

// A snapshot left pending (a publish killed half way) is listed with its tags, pending, and can be
// deleted; with SnapshotPendingPolls a completed snapshot is pending for that many polls.
func TestPendingSnapshots(t *testing.T) {
	c := New(t, Options{SnapshotPendingPolls: 2})
	e, b := defaultClients(c)
	ctx := context.Background()
	left, err := b.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Tags: []ebstypes.Tag{{Key: aws.String("drover:image"), Value: aws.String("abc")}}})
	if err != nil {
		t.Fatal(err)
	}
	put(t, b, *left.SnapshotId, 0, block(1))
	done, err := b.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := b.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: done.SnapshotId, ChangedBlocksCount: aws.Int32(0)})
	if err != nil || cs.Status != ebstypes.StatusPending {
		t.Fatalf("CompleteSnapshot = %+v, %v; want pending", cs, err)
	}
	states := func() map[string]ec2types.SnapshotState {
		out, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]ec2types.SnapshotState{}
		for _, s := range out.Snapshots {
			m[*s.SnapshotId] = s.State
		}
		return m
	}
	if s := states(); s[*left.SnapshotId] != "pending" || s[*done.SnapshotId] != "pending" {
		t.Fatalf("first poll: %v", s)
	}
	if s := states(); s[*left.SnapshotId] != "pending" || s[*done.SnapshotId] != "completed" {
		t.Fatalf("second poll: %v", s)
	}
	out, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:drover:image"), Values: []string{"abc"}},
		{Name: aws.String("status"), Values: []string{"pending"}}}})
	if err != nil || len(out.Snapshots) != 1 || *out.Snapshots[0].SnapshotId != *left.SnapshotId {
		t.Fatalf("the pending snapshot by tag: %+v, %v", out, err)
	}
	if _, err := e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: left.SnapshotId}); err != nil {
		t.Fatal(err)
	}
	_, err = b.ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: left.SnapshotId})
	wantCode(t, "ListSnapshotBlocks of a deleted snapshot", err, "ResourceNotFoundException")
}

// A tenth of PutSnapshotBlock calls throttled: the SDK's retryer gets every block in, and the
// same seed throttles the same calls.
func TestThrottledBlocks(t *testing.T) {
	run := func() (throttled int) {
		c := New(t, Options{})
		c.ThrottleBlocks(0.1, 42)
		c.Fail(Fault{Service: "ebs", Action: "PutSnapshotBlock", Status: 500, Code: "InternalServerException", Times: 2})
		c.Fail(Fault{Service: "ebs", Action: "CompleteSnapshot", Status: 503, Code: "ServiceUnavailableException", Times: 1})
		e, _ := defaultClients(c)
		// The SDK's standard retryer with a shorter backoff, so the test is quick.
		b := ebs.New(ebs.Options{Region: c.Region(), BaseEndpoint: aws.String(c.EBSURL()),
			Credentials: credentials.NewStaticCredentialsProvider(DefaultAccessKey, DefaultSecretKey, ""),
			Retryer:     retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 20 * time.Millisecond })})
		blocks := map[int32][]byte{}
		for i := int32(0); i < 60; i++ {
			blocks[i] = block(byte(i + 1))
		}
		publish(t, e, b, "throttled", "x86_64", 1, blocks)
		var failed int
		for _, r := range c.Requests() {
			switch r.Code {
			case "ThrottlingException":
				throttled++
			case "InternalServerException", "ServiceUnavailableException":
				failed++
			}
		}
		if failed != 3 {
			t.Errorf("%d 5xx answers, want 3", failed)
		}
		if got := c.BytesReceived(); got != 60*BlockSize {
			t.Errorf("BytesReceived = %d, want %d", got, 60*BlockSize)
		}
		return throttled
	}
	one, two := run(), run()
	if one == 0 || one != two {
		t.Fatalf("throttled %d then %d PutSnapshotBlock calls, want the same non-zero count", one, two)
	}
}

// Concurrent uploads, as a publisher sends them.
func TestParallelBlocks(t *testing.T) {
	c := New(t, Options{})
	_, b := defaultClients(c)
	st, err := b.StartSnapshot(context.Background(), &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := int32(0); i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := block(byte(i))
			if _, err := b.PutSnapshotBlock(context.Background(), &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(i),
				BlockData: bytes.NewReader(data), DataLength: aws.Int32(BlockSize), Checksum: aws.String(checksum(data)),
				ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256}); err != nil {
				t.Errorf("PutSnapshotBlock %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if s := c.Snapshots(); len(s) != 1 || s[0].Blocks != 16 {
		t.Fatalf("Snapshots = %+v, want one of 16 blocks", s)
	}
}

// A snapshot left pending past its StartSnapshot Timeout goes to error and takes no more blocks.
func TestSnapshotTimeout(t *testing.T) {
	c := New(t, Options{})
	e, b := defaultClients(c)
	st, err := b.StartSnapshot(context.Background(), &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Timeout: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.snapshots[*st.SnapshotId].started = time.Now().Add(-11 * time.Minute)
	c.mu.Unlock()
	data := block(1)
	_, err = b.PutSnapshotBlock(context.Background(), &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(0),
		BlockData: bytes.NewReader(data), DataLength: aws.Int32(BlockSize), Checksum: aws.String(checksum(data)),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256})
	wantCode(t, "PutSnapshotBlock after the timeout", err, "ValidationException")
	ds, err := e.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*st.SnapshotId}})
	if err != nil || ds.Snapshots[0].State != ec2types.SnapshotStateError {
		t.Fatalf("DescribeSnapshots = %+v, %v; want error", ds, err)
	}
}
