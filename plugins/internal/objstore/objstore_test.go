package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
		{"timeout", func(c *Config) { c.AttemptTimeout = -time.Second }, "attempt timeout -1s is negative"},
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

func TestKeysListsObjectsAndUnfinishedUploadsUnderAPrefix(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	ctx := context.Background()
	s := newStore(t, lab, func(c *Config) { c.MaxAttempts = 1; c.Concurrency = 1 })
	path, _ := writeFile(t, threeParts, 16)
	for _, k := range []string{"drover/web.raw.gz", "other/x"} {
		if err := s.Upload(ctx, k, path, nil); err != nil {
			t.Fatal(err)
		}
	}
	lab.Fail(s3lab.Fault{Op: "UploadPart", After: 1, Times: -1, Code: "SlowDown"})
	if err := s.Upload(ctx, "drover/db.raw.gz", path, nil); err == nil {
		t.Fatal("Upload under a throttling store succeeded")
	}
	lab.ClearFaults()
	keys, err := s.Keys(ctx, "drover/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"drover/db.raw.gz", "drover/web.raw.gz"}; !slices.Equal(keys, want) {
		t.Errorf("Keys = %q, want %q", keys, want)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if keys, err := s.Keys(ctx, "drover/"); err != nil || len(keys) != 0 {
		t.Errorf("Keys after deleting them = %q, %v; want none", keys, err)
	}
}

func TestMissingBucketIsNamed(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{Buckets: []string{"another"}})
	s := newStore(t, lab, nil)
	path, _ := writeFile(t, MinPartSize, 17)
	err := s.Upload(context.Background(), "web.raw.gz", path, nil)
	if err == nil || !strings.Contains(err.Error(), "drover-images/web.raw.gz") || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("Upload to a missing bucket = %v, want an error naming the bucket and NoSuchBucket", err)
	}
}

func TestKeysWithReservedCharacters(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, MinPartSize+1, 19)
	ctx := context.Background()
	const key = "images/web 1+x=y&z,(a).raw.gz"
	if err := s.Upload(ctx, key, path, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, key, data)
	u, err := s.Presign(ctx, key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(t, http.DefaultClient, u); status != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL %s: %d with %d bytes", u, status, len(body))
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if left := lab.Leftovers(); len(left) != 0 {
		t.Fatalf("left %q", left)
	}
}
