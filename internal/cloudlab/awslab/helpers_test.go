package awslab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// clients are the real SDK clients pointed at c, signing with the key and secret given.
func clients(c *Cloud, key, secret string) (*ec2.Client, *ebs.Client) {
	creds := credentials.NewStaticCredentialsProvider(key, secret, "")
	e := ec2.New(ec2.Options{Region: c.Region(), Credentials: creds, BaseEndpoint: aws.String(c.EC2URL())})
	b := ebs.New(ebs.Options{Region: c.Region(), Credentials: creds, BaseEndpoint: aws.String(c.EBSURL())})
	return e, b
}

func defaultClients(c *Cloud) (*ec2.Client, *ebs.Client) {
	return clients(c, DefaultAccessKey, DefaultSecretKey)
}

// apiCode is the AWS error code of err, or "" when err is nil or not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %s", what, err, got, code)
	}
}

// block is a 512 KiB block filled with b.
func block(b byte) []byte { return bytes.Repeat([]byte{b}, BlockSize) }

func checksum(data []byte) string {
	s := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(s[:])
}

// linear is the LINEAR aggregated checksum of blocks given in block index order.
func linear(blocks ...[]byte) string {
	h := sha256.New()
	for _, b := range blocks {
		s := sha256.Sum256(b)
		h.Write(s[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func put(t *testing.T, cl *ebs.Client, id string, index int32, data []byte) {
	t.Helper()
	_, err := cl.PutSnapshotBlock(context.Background(), &ebs.PutSnapshotBlockInput{SnapshotId: aws.String(id), BlockIndex: aws.Int32(index),
		BlockData: bytes.NewReader(data), DataLength: aws.Int32(int32(len(data))), Checksum: aws.String(checksum(data)),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256, Progress: aws.Int32(50)})
	if err != nil {
		t.Fatalf("PutSnapshotBlock %s %d: %v", id, index, err)
	}
}

// publish writes blocks (index -> data) to a new snapshot of size GiB, completes it and
// registers an image of it; it returns the snapshot and image IDs.
func publish(t *testing.T, e *ec2.Client, b *ebs.Client, name, arch string, size int64, blocks map[int32][]byte) (string, string) {
	t.Helper()
	ctx := context.Background()
	st, err := b.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(size), Description: aws.String(name),
		Tags: []ebstypes.Tag{{Key: aws.String("drover:image"), Value: aws.String(name)}}, Timeout: aws.Int32(60)})
	if err != nil {
		t.Fatalf("StartSnapshot: %v", err)
	}
	var ordered [][]byte
	for _, i := range sortedKeys(blocks) {
		put(t, b, *st.SnapshotId, i, blocks[i])
		ordered = append(ordered, blocks[i])
	}
	if _, err := b.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: st.SnapshotId, ChangedBlocksCount: aws.Int32(int32(len(blocks))),
		Checksum: aws.String(linear(ordered...)), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear}); err != nil {
		t.Fatalf("CompleteSnapshot: %v", err)
	}
	out, err := e.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(name), Architecture: ec2types.ArchitectureValues(arch),
		RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &ec2types.EbsBlockDevice{SnapshotId: st.SnapshotId, VolumeType: ec2types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)}}},
		EnaSupport: aws.Bool(true), BootMode: ec2types.BootModeValuesUefiPreferred, ImdsSupport: ec2types.ImdsSupportValuesV20,
		VirtualizationType: aws.String("hvm"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage,
			Tags: []ec2types.Tag{{Key: aws.String("drover:image"), Value: aws.String(name)}}}}})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	return *st.SnapshotId, *out.ImageId
}
