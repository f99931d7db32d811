package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
)

// drover-boot's metadata reads (IMDSv2 token, user-data, the instance profile's credentials)
// against the cloud lab's metadata service, the one instances booted by awslab get: the fakes of
// this package and awslab must agree on the protocol.
func TestReadsAWSLabMetadata(t *testing.T) {
	prof := awslab.InstanceProfile{Role: "drover-web", AccessKeyID: "ASIAAWSLABWEB0000001", SecretAccessKey: "awslab-web-secret", Token: "awslab-web-token"}
	c := awslab.New(t, awslab.Options{InstanceProfiles: map[string]awslab.InstanceProfile{"drover-web": prof}})
	creds := credentials.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")
	e := ec2.New(ec2.Options{Region: c.Region(), Credentials: creds, BaseEndpoint: aws.String(c.EC2URL())})
	b := ebs.New(ebs.Options{Region: c.Region(), Credentials: creds, BaseEndpoint: aws.String(c.EBSURL())})
	ctx := context.Background()
	st, err := b.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{1}, awslab.BlockSize)
	sum := sha256.Sum256(data)
	if _, err := b.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: aws.Int32(0), BlockData: bytes.NewReader(data),
		DataLength: aws.Int32(awslab.BlockSize), Checksum: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: st.SnapshotId, ChangedBlocksCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	im, err := e.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("web"), Architecture: ec2types.ArchitectureValuesX8664,
		RootDeviceName: aws.String("/dev/xvda"), ImdsSupport: ec2types.ImdsSupportValuesV20,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: st.SnapshotId}}}})
	if err != nil {
		t.Fatal(err)
	}
	userData := `{"version":1,"role":"web"}`
	run, err := e.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: im.ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("drover-web")},
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(userData)))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Metadata(*run.Instances[0].InstanceId))
	defer srv.Close()

	bt := &boot{c: config{MetadataURL: srv.URL, FwCfgPath: none}}
	got, src, err := bt.userData(ctx, true)
	if err != nil || string(got) != userData || src != "ec2-imdsv2" {
		t.Fatalf("user-data %q from %q: %v", got, src, err)
	}
	cr, err := bt.fetchCredentials(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if cr.accessKeyID != prof.AccessKeyID || cr.secretKey.Reveal() != prof.SecretAccessKey || cr.token.Reveal() != prof.Token {
		t.Fatalf("credentials %s read, want the instance profile's", cr.accessKeyID)
	}
}
