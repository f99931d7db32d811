package aws_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
)

// lab is the fake cloud and what a test needs to talk to it with the real SDK clients.
type lab struct {
	cloud *awslab.Cloud
	creds awssdk.CredentialsProvider
}

func newLab(t testing.TB, opts awslab.Options) *lab {
	t.Helper()
	c := awslab.New(t, opts)
	return &lab{cloud: c, creds: credentials.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")}
}

// provider opens the aws provider on the fake, with retries and polls fast enough for tests.
func (l *lab) provider(t testing.TB, mutate ...func(*aws.Config)) *aws.Provider {
	t.Helper()
	cfg := &aws.Config{Region: l.cloud.Region(), InstanceType: "t3.micro", SubnetID: "subnet-0a1b2c3d",
		SecurityGroups: []string{"sg-0123456789abcdef0"}, Address: aws.AddressPublic}
	for _, m := range mutate {
		m(cfg)
	}
	p, err := aws.New(context.Background(), cfg, aws.WithCredentials(l.creds),
		aws.WithEndpoints(l.cloud.EC2URL(), l.cloud.EBSURL()),
		aws.WithRetry(10, 20*time.Millisecond), aws.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *lab) ec2(t testing.TB) *ec2.Client {
	return ec2.New(ec2.Options{Region: l.cloud.Region(), Credentials: l.creds, BaseEndpoint: awssdk.String(l.cloud.EC2URL())})
}

func (l *lab) ebs(t testing.TB) *ebs.Client {
	return ebs.New(ebs.Options{Region: l.cloud.Region(), Credentials: l.creds, BaseEndpoint: awssdk.String(l.cloud.EBSURL())})
}

// content reads the first size bytes of the AMI's root snapshot back through the EBS direct APIs
// (ListSnapshotBlocks, GetSnapshotBlock).
func (l *lab) content(ctx context.Context, t testing.TB, ref compute.PublishedImage, size int64) ([]byte, error) {
	imgs, err := l.ec2(t).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ref.ID}})
	if err != nil {
		return nil, err
	}
	snap := awssdk.ToString(imgs.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId)
	out := make([]byte, size)
	client := l.ebs(t)
	pages := ebs.NewListSnapshotBlocksPaginator(client, &ebs.ListSnapshotBlocksInput{SnapshotId: &snap})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range page.Blocks {
			off := int64(awssdk.ToInt32(b.BlockIndex)) * awslab.BlockSize
			if off >= size {
				continue
			}
			got, err := client.GetSnapshotBlock(ctx, &ebs.GetSnapshotBlockInput{SnapshotId: &snap, BlockIndex: b.BlockIndex, BlockToken: b.BlockToken})
			if err != nil {
				return nil, err
			}
			buf := make([]byte, awslab.BlockSize)
			n, _ := io.ReadFull(got.BlockData, buf)
			got.BlockData.Close()
			copy(out[off:], buf[:n])
		}
	}
	return out, nil
}

// sparseSource writes a disk of n blocks, every third random and the rest zero, and returns it
// with its bytes in use (what a publish may send at most).
func sparseSource(t testing.TB, n int) (compute.PublishSource, []byte, int64) {
	t.Helper()
	data := make([]byte, n*awslab.BlockSize)
	var inUse int64
	for i := 0; i < n; i += 3 {
		rand.Read(data[i*awslab.BlockSize : (i+1)*awslab.BlockSize])
		inUse += awslab.BlockSize
	}
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	sum := sha256.Sum256(data)
	return compute.PublishSource{Identity: "sha256:" + hex.EncodeToString(id), Role: "web", Arch: "amd64", Path: path,
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, data, inUse
}
