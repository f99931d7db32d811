package s3lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func client(l *Lab, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region: l.Region, BaseEndpoint: aws.String(l.URL), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(l.AccessKeyID, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSignedRequestsOnly(t *testing.T) {
	l := New(t, Options{Buckets: []string{"b"}})
	ctx := context.Background()
	good := client(l, l.SecretAccessKey)
	if _, err := good.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	_, err := client(l, "wrong").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if code(err) != "SignatureDoesNotMatch" {
		t.Errorf("GET signed with another secret: %v, want SignatureDoesNotMatch", err)
	}
	resp, err := http.Get(l.URL + "/b/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous GET: %d, want 403", resp.StatusCode)
	}
	if l.Count("GetObject") != 0 || l.Count("PutObject") != 1 {
		t.Errorf("counts GetObject %d, PutObject %d; want 0 and 1 (refused requests are not counted)", l.Count("GetObject"), l.Count("PutObject"))
	}
	// A presigned GET works with a plain client.
	p, err := s3.NewPresignClient(good).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("presigned GET: %d %q, want 200 hello", resp.StatusCode, body)
	}
	if objs := l.Objects("b"); len(objs) != 1 || objs[0].Key != "k" || objs[0].Size != 5 {
		t.Errorf("Objects = %+v", objs)
	}
}

func TestMultipartPartsUnder5MiBAreRefusedButTheLastOne(t *testing.T) {
	l := New(t, Options{Buckets: []string{"b"}})
	ctx := context.Background()
	c := client(l, l.SecretAccessKey)
	b, k := aws.String("b"), aws.String("k")
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, size := range []int{1 << 20, 100} {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(make([]byte, size))})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if ups := l.Uploads("b"); len(ups) != 1 || ups[0].Parts != 2 {
		t.Fatalf("Uploads = %+v, want one upload of 2 parts", ups)
	}
	if left := l.Leftovers(); len(left) != 1 || left[0] != "b/k (unfinished upload)" {
		t.Fatalf("Leftovers = %q, want the unfinished upload", left)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if code(err) != "EntityTooSmall" {
		t.Fatalf("completing with a 1 MiB first part: %v, want EntityTooSmall", err)
	}
	// One part alone may be small: it is the last.
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts[:1]}})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := l.Content("b", "k"); !ok || len(got) != 1<<20 {
		t.Errorf("content: %d bytes, want %d", len(got), 1<<20)
	}
	if left := l.Leftovers(); len(left) != 1 || left[0] != "b/k" {
		t.Fatalf("Leftovers = %q, want the object alone", left)
	}
}

func TestFaultsApplyAfterAndTimes(t *testing.T) {
	l := New(t, Options{Buckets: []string{"b"}})
	ctx := context.Background()
	c := client(l, l.SecretAccessKey)
	l.Fail(Fault{Op: "HeadBucket", After: 1, Times: 2, Status: 500, Code: "InternalError"})
	var got []string
	for range 4 {
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("b")})
		got = append(got, code(err))
	}
	// HEAD answers carry no body, so the SDK names a 500 by its status.
	if want := []string{"", "InternalServerError", "InternalServerError", ""}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("HeadBucket codes = %q, want %q", got, want)
	}
	// (net/http itself replays a GET whose reused connection drops, so the cut is shown on a PUT.)
	l.Fail(Fault{Op: "PutObject", Cut: true})
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")}); err == nil {
		t.Error("PutObject over a cut connection succeeded")
	}
	if l.Count("HeadBucket") != 4 || l.Count("PutObject") != 1 || len(l.Objects("b")) != 0 {
		t.Errorf("counts HeadBucket %d PutObject %d, objects %v; want 4, 1 and none", l.Count("HeadBucket"), l.Count("PutObject"), l.Objects("b"))
	}
}
