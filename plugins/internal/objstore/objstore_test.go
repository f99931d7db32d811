package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
)

const bucket = "drover-images"

// newStore returns a Store on lab with 5 MiB parts and fast retries, changed by adjust.
func newStore(t *testing.T, lab *s3lab.Lab, adjust func(*Config)) *Store {
	t.Helper()
	cfg := Config{
		Endpoint: lab.URL, Region: lab.Region, Bucket: bucket,
		AccessKeyID: lab.AccessKeyID, SecretAccessKey: lab.SecretAccessKey,
		UsePathStyle: true, PartSize: MinPartSize, MaxBackoff: 20 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeFile writes size pseudo-random bytes (from seed) to a file in t's temp dir.
func writeFile(t *testing.T, size int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	path := filepath.Join(t.TempDir(), "image.raw.gz")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// threeParts is a size of three 5 MiB parts, the last one short.
const threeParts = 2*MinPartSize + 12345

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// assertStored checks the object at key holds data with its sha256 metadata, and no unfinished
// upload is left.
func assertStored(t *testing.T, lab *s3lab.Lab, key string, data []byte) {
	t.Helper()
	got, ok := lab.Content(bucket, key)
	if !ok || !bytes.Equal(got, data) {
		t.Fatalf("object %s: stored %d bytes (found %v), want the %d bytes uploaded", key, len(got), ok, len(data))
	}
	objs := lab.Objects(bucket)
	if len(objs) != 1 || objs[0].Metadata["sha256"] != sha(data) {
		t.Fatalf("objects = %+v, want one with sha256 %s", objs, sha(data))
	}
	if ups := lab.Uploads(bucket); len(ups) != 0 {
		t.Fatalf("unfinished uploads left: %+v", ups)
	}
}

func TestUploadSendsPartsInParallelAndReportsProgress(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, threeParts, 1)
	var mu sync.Mutex
	var reports [][2]int64
	err := s.Upload(context.Background(), "images/web.raw.gz", path, func(sent, total int64) {
		mu.Lock()
		reports = append(reports, [2]int64{sent, total})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "images/web.raw.gz", data)
	if n := lab.Count("UploadPart"); n != 3 {
		t.Errorf("UploadPart requests = %d, want 3", n)
	}
	if len(reports) != 3 || reports[2] != [2]int64{threeParts, threeParts} {
		t.Fatalf("progress = %v, want 3 reports ending at %d/%d", reports, threeParts, threeParts)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i][0] <= reports[i-1][0] {
			t.Errorf("progress went from %d to %d", reports[i-1][0], reports[i][0])
		}
	}
}

func TestUploadResumesAnInterruptedUploadSendingOnlyMissingParts(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	path, data := writeFile(t, threeParts, 2)
	// One part arrives, then the store throttles every part; one attempt each, so the upload
	// gives up as a run that was killed would.
	lab.Fail(s3lab.Fault{Op: "UploadPart", After: 1, Times: -1, Status: 503, Code: "SlowDown"})
	s := newStore(t, lab, func(c *Config) { c.MaxAttempts = 1; c.Concurrency = 1 })
	err := s.Upload(context.Background(), "web.raw.gz", path, nil)
	if err == nil || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("Upload under a throttling store = %v, want a SlowDown error", err)
	}
	ups := lab.Uploads(bucket)
	if len(ups) != 1 || ups[0].Parts != 1 || len(lab.Objects(bucket)) != 0 {
		t.Fatalf("after the failure: uploads %+v, objects %+v; want one unfinished upload of 1 part, no object", ups, lab.Objects(bucket))
	}

	lab.ClearFaults()
	before, creates := lab.Count("UploadPart"), lab.Count("CreateMultipartUpload")
	var last int64
	var first int64 = -1
	err = s.Upload(context.Background(), "web.raw.gz", path, func(sent, total int64) {
		if first < 0 {
			first = sent
		}
		last = sent
	})
	if err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", data)
	if n := lab.Count("UploadPart") - before; n != 2 {
		t.Errorf("the rerun sent %d parts, want the 2 missing", n)
	}
	if n := lab.Count("CreateMultipartUpload") - creates; n != 0 {
		t.Errorf("the rerun began %d new uploads, want 0 (it resumes)", n)
	}
	if first != MinPartSize || last != threeParts {
		t.Errorf("progress began at %d and ended at %d, want %d (the part already stored) and %d", first, last, MinPartSize, threeParts)
	}
}

func TestUploadRetriesThrottlingErrorsAndCutConnections(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	lab.Fail(s3lab.Fault{Op: "UploadPart", Status: 503, Code: "SlowDown"})
	lab.Fail(s3lab.Fault{Op: "UploadPart", Cut: true})
	lab.Fail(s3lab.Fault{Op: "CompleteMultipartUpload", Status: 500, Code: "InternalError"})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, threeParts, 3)
	if err := s.Upload(context.Background(), "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", data)
	if n := lab.Count("UploadPart"); n != 5 {
		t.Errorf("UploadPart requests = %d, want 5 (3 parts, 2 retried)", n)
	}
	if n := lab.Count("CompleteMultipartUpload"); n != 2 {
		t.Errorf("CompleteMultipartUpload requests = %d, want 2 (1 retried)", n)
	}
}

func TestUploadOfStoredBytesSendsNothing(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, threeParts, 4)
	ctx := context.Background()
	if err := s.Upload(ctx, "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	parts, creates := lab.Count("UploadPart"), lab.Count("CreateMultipartUpload")
	var reported [2]int64
	if err := s.Upload(ctx, "web.raw.gz", path, func(sent, total int64) { reported = [2]int64{sent, total} }); err != nil {
		t.Fatal(err)
	}
	if lab.Count("UploadPart") != parts || lab.Count("CreateMultipartUpload") != creates {
		t.Errorf("a second Upload of the same bytes sent %d parts and began %d uploads, want none", lab.Count("UploadPart")-parts, lab.Count("CreateMultipartUpload")-creates)
	}
	if reported != [2]int64{threeParts, threeParts} {
		t.Errorf("progress = %v, want the whole file as stored", reported)
	}
	assertStored(t, lab, "web.raw.gz", data)
}

func TestUploadReplacesOtherBytesAndAbortsTheirUnfinishedUpload(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	ctx := context.Background()
	oldPath, _ := writeFile(t, threeParts, 5)
	lab.Fail(s3lab.Fault{Op: "UploadPart", After: 2, Times: -1, Code: "SlowDown"})
	s := newStore(t, lab, func(c *Config) { c.MaxAttempts = 1; c.Concurrency = 1 })
	if err := s.Upload(ctx, "web.raw.gz", oldPath, nil); err == nil {
		t.Fatal("Upload under a throttling store succeeded")
	}
	lab.ClearFaults()
	newPath, newData := writeFile(t, threeParts+MinPartSize, 6)
	before := lab.Count("UploadPart")
	if err := s.Upload(ctx, "web.raw.gz", newPath, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", newData)
	if n := lab.Count("UploadPart") - before; n != 4 {
		t.Errorf("sent %d parts of the new file, want all 4", n)
	}
	if lab.Count("AbortMultipartUpload") != 1 {
		t.Errorf("AbortMultipartUpload requests = %d, want 1 (the old file's upload)", lab.Count("AbortMultipartUpload"))
	}
	// And a different file stored under the key is replaced, not kept.
	otherPath, otherData := writeFile(t, MinPartSize+1, 7)
	if err := s.Upload(ctx, "web.raw.gz", otherPath, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", otherData)
}

func TestConcurrentUploadsOfOneKeySendItOnce(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, threeParts, 8)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Upload(context.Background(), "web.raw.gz", path, nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	assertStored(t, lab, "web.raw.gz", data)
	if n := lab.Count("UploadPart"); n != 3 {
		t.Errorf("UploadPart requests = %d, want 3", n)
	}
}

func TestPresignedURLServesTheObjectToAPlainGet(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, MinPartSize+100, 9)
	ctx := context.Background()
	if err := s.Upload(ctx, "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	u, err := s.Presign(ctx, "web.raw.gz", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	status, body := get(t, http.DefaultClient, u)
	if status != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL: %d with %d bytes, want 200 with the %d bytes uploaded", status, len(body), len(data))
	}
	// Without its signature, or with the key altered, the URL is refused.
	if status, _ := get(t, http.DefaultClient, strings.Split(u, "?")[0]); status != 403 {
		t.Errorf("GET without the signature: %d, want 403", status)
	}
	if status, _ := get(t, http.DefaultClient, strings.Replace(u, "web.raw.gz", "db.raw.gz", 1)); status != 403 {
		t.Errorf("GET with the key altered: %d, want 403", status)
	}
	short, err := s.Presign(ctx, "web.raw.gz", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if status, body := get(t, http.DefaultClient, short); status != 403 || !strings.Contains(string(body), "expired") {
		t.Errorf("GET after the URL expired: %d %s, want 403 Request has expired", status, body)
	}
}

func get(t *testing.T, c *http.Client, u string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestVirtualHostStyleAddressing(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, func(c *Config) {
		c.Endpoint, c.UsePathStyle, c.HTTPClient = lab.VirtualHostURL, false, lab.HTTPClient()
	})
	path, data := writeFile(t, MinPartSize+1, 10)
	ctx := context.Background()
	if err := s.Upload(ctx, "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", data)
	u, err := s.Presign(ctx, "web.raw.gz", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http://"+bucket+"."+s3lab.VirtualHostBase) {
		t.Errorf("presigned URL %s does not name the bucket in the host", u)
	}
	if status, body := get(t, lab.HTTPClient(), u); status != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL: %d with %d bytes", status, len(body))
	}
}

func TestDeleteRemovesTheObjectAndAbortsUnfinishedUploads(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	ctx := context.Background()
	s := newStore(t, lab, nil)
	path, _ := writeFile(t, threeParts, 11)
	if err := s.Upload(ctx, "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	// An unfinished upload of the same key, as a crashed rerun would leave.
	lab.Fail(s3lab.Fault{Op: "UploadPart", After: 1, Times: -1, Status: 400, Code: "InvalidRequest"})
	other, _ := writeFile(t, threeParts, 12)
	if err := s.Upload(ctx, "web.raw.gz", other, nil); err == nil {
		t.Fatal("Upload with parts refused succeeded")
	}
	lab.ClearFaults()
	if len(lab.Uploads(bucket)) != 1 {
		t.Fatalf("uploads = %+v, want one unfinished", lab.Uploads(bucket))
	}
	if err := s.Delete(ctx, "web.raw.gz"); err != nil {
		t.Fatal(err)
	}
	if objs, ups := lab.Objects(bucket), lab.Uploads(bucket); len(objs) != 0 || len(ups) != 0 {
		t.Fatalf("after Delete: objects %+v, uploads %+v; want none", objs, ups)
	}
	if err := s.Delete(ctx, "web.raw.gz"); err != nil {
		t.Fatalf("Delete of a missing object: %v, want nil", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := Config{Endpoint: "https://nyc3.digitaloceanspaces.com", Bucket: "drover-images", AccessKeyID: "id", SecretAccessKey: "secret"}
	if _, err := New(good); err != nil {
		t.Fatalf("New(%+v): %v", good, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "nyc3.digitaloceanspaces.com" }, `endpoint "nyc3.digitaloceanspaces.com" is not a base URL; want http(s)://host`},
		{"endpoint with a path", func(c *Config) { c.Endpoint = "https://x.example/bucket" }, `endpoint "https://x.example/bucket" is not a base URL`},
		{"bucket with capitals", func(c *Config) { c.Bucket = "Drover" }, `bucket "Drover" is not a valid bucket name; want 3 to 63 lowercase letters`},
		{"bucket too short", func(c *Config) { c.Bucket = "ab" }, `bucket "ab" is not a valid bucket name`},
		{"no key ID", func(c *Config) { c.AccessKeyID = "" }, "got an empty access key ID"},
		{"no secret", func(c *Config) { c.SecretAccessKey = "" }, "got an empty secret access key"},
		{"part too small", func(c *Config) { c.PartSize = 1 << 20 }, "part size 1048576 is out of range; want 5242880 (5 MiB) to 5368709120 (5 GiB)"},
		{"concurrency", func(c *Config) { c.Concurrency = 100 }, "concurrency 100 is out of range; want 1 to 32"},
		{"attempts", func(c *Config) { c.MaxAttempts = -1 }, "max attempts -1 is out of range; want 1 to 20"},
		{"backoff", func(c *Config) { c.MaxBackoff = -time.Second }, "max backoff -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			_, err := New(c)
			if err == nil || !strings.HasPrefix(err.Error(), "objstore: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	s, _ := New(good)
	if _, err := s.Presign(context.Background(), "k", 8*24*time.Hour); err == nil || !strings.Contains(err.Error(), "presign ttl 192h0m0s is out of range") {
		t.Errorf("Presign for 8 days = %v, want an out-of-range error", err)
	}
	if err := s.Upload(context.Background(), "", "/nonexistent", nil); err == nil || !strings.Contains(err.Error(), `object key "" is invalid`) {
		t.Errorf("Upload with an empty key = %v, want an invalid-key error", err)
	}
}

func TestUploadSurvivesACompletionWhoseAnswerIsLost(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	// The store completes the upload but the answer never arrives; the SDK's retry then finds no
	// such upload, and Upload must see the object is there rather than fail.
	lab.Fail(s3lab.Fault{Op: "CompleteMultipartUpload", Lost: true})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, threeParts, 13)
	if err := s.Upload(context.Background(), "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", data)
	if n := lab.Count("CompleteMultipartUpload"); n != 2 {
		t.Errorf("CompleteMultipartUpload requests = %d, want 2 (the lost one and the retry)", n)
	}
}

func TestUploadCancelledMidwayResumes(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, func(c *Config) { c.Concurrency = 1 })
	path, data := writeFile(t, threeParts, 14)
	ctx, cancel := context.WithCancel(context.Background())
	err := s.Upload(ctx, "web.raw.gz", path, func(sent, total int64) { cancel() }) // killed after the first part
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload cancelled after a part = %v, want context.Canceled", err)
	}
	ups := lab.Uploads(bucket)
	if len(ups) != 1 || ups[0].Parts == 0 || ups[0].Parts == 3 {
		t.Fatalf("uploads after the cancel: %+v, want one unfinished with some parts", ups)
	}
	before := lab.Count("UploadPart")
	if err := s.Upload(context.Background(), "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", data)
	if sent := lab.Count("UploadPart") - before; sent != 3-ups[0].Parts {
		t.Errorf("the rerun sent %d parts, want the %d missing", sent, 3-ups[0].Parts)
	}
}

func TestUploadResumingAnotherFilesUploadEndsWithTheRightChecksum(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	ctx := context.Background()
	s := newStore(t, lab, func(c *Config) { c.MaxAttempts = 1; c.Concurrency = 1 })
	// File A's upload stops after its first part. File B shares that first part and differs
	// after it: resuming looks right part by part, but the upload carries A's sha256.
	pathA, dataA := writeFile(t, threeParts, 15)
	dataB := bytes.Clone(dataA)
	dataB[len(dataB)-1] ^= 0xff
	pathB := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(pathB, dataB, 0o644); err != nil {
		t.Fatal(err)
	}
	lab.Fail(s3lab.Fault{Op: "UploadPart", After: 1, Times: -1, Code: "SlowDown"})
	if err := s.Upload(ctx, "web.raw.gz", pathA, nil); err == nil {
		t.Fatal("Upload under a throttling store succeeded")
	}
	lab.ClearFaults()
	creates := lab.Count("CreateMultipartUpload")
	if err := s.Upload(ctx, "web.raw.gz", pathB, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", dataB)
	if n := lab.Count("CreateMultipartUpload") - creates; n != 1 {
		t.Errorf("began %d uploads, want 1 (afresh, once the resumed one showed A's checksum)", n)
	}
}
