package s3lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
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
	if files, _ := os.ReadDir(l.parts.dir); len(files) != 0 {
		t.Errorf("%d part files left after completing", len(files))
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

func TestUploadsAndPartsPageAndAbortRemovesPartFiles(t *testing.T) {
	l := New(t, Options{Buckets: []string{"b"}})
	ctx := context.Background()
	c := client(l, l.SecretAccessKey)
	b := aws.String("b")
	var ids []string
	for _, k := range []string{"x/1", "x/2", "x/2", "y"} {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(up.UploadId))
	}
	for n := int32(1); n <= 3; n++ {
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("x/2"), UploadId: &ids[2], PartNumber: &n, Body: strings.NewReader("part")}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	pages := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("x/"), MaxUploads: aws.Int32(1)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Uploads {
			listed = append(listed, aws.ToString(u.Key)+"#"+aws.ToString(u.UploadId))
		}
	}
	if want := []string{"x/1#" + ids[0], "x/2#" + ids[1], "x/2#" + ids[2]}; strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("uploads paged one at a time = %q, want %q", listed, want)
	}
	var numbers []int32
	parts := s3.NewListPartsPaginator(c, &s3.ListPartsInput{Bucket: b, Key: aws.String("x/2"), UploadId: &ids[2], MaxParts: aws.Int32(1)})
	for parts.HasMorePages() {
		page, err := parts.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Parts {
			numbers = append(numbers, aws.ToInt32(p.PartNumber))
		}
	}
	if len(numbers) != 3 || numbers[0] != 1 || numbers[2] != 3 {
		t.Errorf("parts paged one at a time = %v, want [1 2 3]", numbers)
	}
	for i, k := range []string{"x/1", "x/2", "x/2", "y"} {
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String(k), UploadId: &ids[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("y"), UploadId: &ids[3]}); code(err) != "NoSuchUpload" {
		t.Errorf("aborting twice: %v, want NoSuchUpload", err)
	}
	files, _ := os.ReadDir(l.parts.dir)
	if len(l.Leftovers()) != 0 || len(files) != 0 {
		t.Errorf("after aborting all: leftovers %q, %d part files", l.Leftovers(), len(files))
	}
}
