// Package s3lab is the cloud lab's S3-compatible object store, standing in for Vultr Object Storage
// and DigitalOcean Spaces: github.com/johannesboyne/gofakes3 (an in-memory S3 implementation)
// served by an httptest server on loopback, wrapped with what gofakes3 leaves out and the clouds do:
//
//   - Authentication. gofakes3 checks no signature at all, so an unsigned GET, a presigned URL that
//     expired or one signed with the wrong key would all be served, and a test could not tell a
//     working presigned URL from a plain link. The lab checks SigV4 on every request, in the header
//     form (the SDK's calls) and the query form (presigned URLs: signature and X-Amz-Expires), and
//     refuses anything else with 403 AccessDenied, as a private bucket does.
//   - S3's minimum part size: CompleteMultipartUpload fails with EntityTooSmall when a part other
//     than the last is smaller than 5 MiB (Options.MinPartSize).
//   - Virtual-host-style addressing (bucket.s3lab.test), reached through HTTPClient.
//   - Multipart parts kept in files (diskParts) rather than in memory, so a gigabyte image costs
//     its size in memory once (the stored object), not three times; an uploads list that is
//     empty rather than 404 NoSuchUpload in a bucket that never had one, as in S3.
//   - Faults (Fail) and request counts (Count), so tests can prove retries and resumption.
//
// Objects and Uploads read the store directly, to assert what a run left behind.
package s3lab

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// VirtualHostBase is the domain under which the lab answers virtual-host-style requests:
// "<bucket>.s3lab.test". Such names resolve nowhere; HTTPClient dials the lab for them.
const VirtualHostBase = "s3lab.test"

// Options configures a Lab. The zero value is usable.
type Options struct {
	// Buckets are created empty; default {"drover-images"}.
	Buckets []string
	// Region is the signing region the lab expects; default "us-east-1".
	Region string
	// AccessKeyID and SecretAccessKey are the one key pair the lab accepts; defaults are fixed
	// test values.
	AccessKeyID, SecretAccessKey string
	// MinPartSize is the smallest size of a part other than the last; default 5 MiB, as S3.
	MinPartSize int64
}

// Lab is a running S3-compatible store. Its methods are safe for concurrent use.
type Lab struct {
	// URL is the path-style endpoint, "http://127.0.0.1:port".
	URL string
	// VirtualHostURL is the endpoint for virtual-host-style clients, "http://s3lab.test:port";
	// reach it with HTTPClient.
	VirtualHostURL string
	Region         string
	// AccessKeyID and SecretAccessKey are the credentials the lab accepts.
	AccessKeyID, SecretAccessKey string

	srv      *httptest.Server
	backend  *s3mem.Backend
	parts    *diskParts
	fake     http.Handler // gofakes3, path-style, unauthenticated
	minPart  int64
	mu       sync.Mutex
	counts   map[string]int
	faults   []*queuedFault
	partSize map[string]int64 // uploadID/partNumber -> size of the part stored
}

// New starts a lab and stops it at t.Cleanup.
func New(t testing.TB, o Options) *Lab {
	t.Helper()
	if len(o.Buckets) == 0 {
		o.Buckets = []string{"drover-images"}
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID = "S3LABACCESSKEY000001"
	}
	if o.SecretAccessKey == "" {
		o.SecretAccessKey = "s3lab-secret-key-for-tests-only-000000001"
	}
	if o.MinPartSize == 0 {
		o.MinPartSize = 5 << 20
	}
	backend := s3mem.New()
	for _, b := range o.Buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatalf("s3lab: create bucket %q: %v", b, err)
		}
	}
	dir, err := partsDir(t.TempDir())
	if err != nil {
		t.Fatalf("s3lab: %v", err)
	}
	parts := newDiskParts(dir, backend)
	store := struct {
		*s3mem.Backend
		*diskParts
	}{backend, parts}
	l := &Lab{
		Region:          o.Region,
		AccessKeyID:     o.AccessKeyID,
		SecretAccessKey: o.SecretAccessKey,
		backend:         backend,
		parts:           parts,
		fake:            gofakes3.New(store, gofakes3.WithAutoBucket(false)).Server(),
		minPart:         o.MinPartSize,
		counts:          map[string]int{},
		partSize:        map[string]int64{},
	}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.srv.Close)
	l.URL = l.srv.URL
	_, port, _ := net.SplitHostPort(l.srv.Listener.Addr().String())
	l.VirtualHostURL = "http://" + VirtualHostBase + ":" + port
	return l
}

// HTTPClient returns a client that reaches the lab under any host name (virtual-host-style
// buckets under VirtualHostBase included): it dials the lab's loopback address whatever the URL.
func (l *Lab) HTTPClient() *http.Client {
	addr := l.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	return &http.Client{Transport: tr}
}

// Count returns how many requests of an operation ("UploadPart", "CompleteMultipartUpload",
// "GetObject", ...) the lab has received with a valid signature, faulted ones included.
func (l *Lab) Count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[op]
}

// Object is a stored object as the store knows it.
type Object struct {
	Key  string
	Size int64
	// ETag is the one listings give, unquoted: gofakes3 keeps the MD5 of the whole content even
	// for a multipart object (S3 lists "md5-of-part-md5s-N").
	ETag string
	// Metadata are the user metadata, keyed by lowercase name without "x-amz-meta-".
	Metadata map[string]string
}

// Objects returns the objects in bucket, by key.
func (l *Lab) Objects(bucket string) []Object {
	list, err := l.backend.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		return nil
	}
	var out []Object
	for _, c := range list.Contents {
		o := Object{Key: c.Key, Size: c.Size, ETag: strings.Trim(c.ETag, `"`), Metadata: map[string]string{}}
		if h, err := l.backend.HeadObject(bucket, c.Key); err == nil {
			for k, v := range h.Metadata {
				if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-meta-") {
					o.Metadata[strings.TrimPrefix(lk, "x-amz-meta-")] = v
				}
			}
			h.Contents.Close()
		}
		out = append(out, o)
	}
	return out
}

// Content returns the bytes of an object.
func (l *Lab) Content(bucket, key string) ([]byte, bool) {
	obj, err := l.backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, false
	}
	defer obj.Contents.Close()
	b, err := io.ReadAll(obj.Contents)
	return b, err == nil
}

// Leftovers lists what the store holds in every bucket, objects as "bucket/key" and unfinished
// multipart uploads as "bucket/key (unfinished upload)": what a test that cleaned up expects empty.
func (l *Lab) Leftovers() []string {
	var out []string
	for _, b := range l.Buckets() {
		for _, o := range l.Objects(b) {
			out = append(out, b+"/"+o.Key)
		}
		for _, u := range l.Uploads(b) {
			out = append(out, b+"/"+u.Key+" (unfinished upload)")
		}
	}
	return out
}

// Upload is an unfinished multipart upload.
type Upload struct {
	Key, UploadID string
	Parts         int
}

// Uploads returns the unfinished multipart uploads in bucket, with how many parts each holds.
func (l *Lab) Uploads(bucket string) []Upload {
	var list gofakes3.ListMultipartUploadsResult
	if !l.internal(http.MethodGet, "/"+bucket+"?uploads", &list) {
		return nil
	}
	var out []Upload
	for _, u := range list.Uploads {
		var parts gofakes3.ListMultipartUploadPartsResult
		target := (&url.URL{Path: "/" + bucket + "/" + u.Key, RawQuery: url.Values{"uploadId": {string(u.UploadID)}}.Encode()}).String()
		l.internal(http.MethodGet, target, &parts)
		out = append(out, Upload{Key: u.Key, UploadID: string(u.UploadID), Parts: len(parts.Parts)})
	}
	return out
}

// internal asks gofakes3 directly (no signature, no fault, not counted) and decodes its XML.
func (l *Lab) internal(method, target string, into any) bool {
	rec := httptest.NewRecorder()
	l.fake.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code == http.StatusOK && xml.Unmarshal(rec.Body.Bytes(), into) == nil
}

// Buckets lists the lab's buckets.
func (l *Lab) Buckets() []string {
	infos, _ := l.backend.ListBuckets()
	var out []string
	for _, b := range infos {
		out = append(out, b.Name)
	}
	slices.Sort(out)
	return out
}
