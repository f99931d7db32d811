// Package objstore puts disk images in an S3-compatible object store (Vultr Object Storage,
// DigitalOcean Spaces) so a platform can import them from a short-lived presigned URL, then
// deletes them. It uses aws-sdk-go-v2's S3 client with a custom endpoint and static credentials.
//
// An upload is multipart and resumable: a part is sent once, an interrupted upload is finished by
// the next Upload of the same key, and an object already stored with the same bytes is not sent
// again. What a failed Upload leaves behind is an unfinished multipart upload holding the parts
// that arrived; the next Upload of that key resumes it and Delete aborts it.
//
// Retries: the SDK's standard retryer retries throttling (503 SlowDown, 429), 500, 502, 503, 504,
// broken connections and attempts that outlast Config.AttemptTimeout, with exponential backoff and
// jitter, up to Config.MaxAttempts attempts per request (3 by default; its retry quota can end
// them sooner under a storm of errors); every request body here is a rewindable section of the
// file, so a part is resent whole. A part that still fails ends the Upload; a rerun resumes it.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/drover-dev/drover/plugins/internal/keylock"
)

const (
	// MinPartSize is S3's smallest part but the last: 5 MiB.
	MinPartSize = 5 << 20
	// MaxPartSize is S3's largest part: 5 GiB.
	MaxPartSize = 5 << 30
	// DefaultPartSize is the part size when Config.PartSize is 0.
	DefaultPartSize = 16 << 20
	// DefaultConcurrency is how many parts are sent at once when Config.Concurrency is 0.
	DefaultConcurrency = 4
	// DefaultAttemptTimeout is the time one attempt of a request may take when
	// Config.AttemptTimeout is 0: a 16 MiB part at 256 kbit/s.
	DefaultAttemptTimeout = 10 * time.Minute
	// maxParts is S3's limit on the parts of one upload.
	maxParts = 10000
	// MaxPresignTTL is SigV4's limit on a presigned URL's lifetime: seven days.
	MaxPresignTTL = 7 * 24 * time.Hour
	// checksumKey is the user metadata (x-amz-meta-sha256) holding the hex SHA-256 of the whole
	// object, by which Upload recognizes an object it already stored.
	checksumKey = "sha256"
)

// Config says where the store is and how to reach it.
type Config struct {
	// Endpoint is the store's base URL: "https://ewr1.vultrobjects.com",
	// "https://nyc3.digitaloceanspaces.com".
	Endpoint string
	// Region is the SigV4 signing region; "" means "us-east-1", which both Vultr and DigitalOcean
	// accept (the endpoint already names the location).
	Region string
	// Bucket holds the images; it must exist.
	Bucket string
	// AccessKeyID and SecretAccessKey are the store's static key pair.
	AccessKeyID, SecretAccessKey string
	// UsePathStyle addresses the bucket in the path (endpoint/bucket/key) rather than in the host
	// name (bucket.endpoint/key, the default, which both platforms document).
	UsePathStyle bool
	// HTTPClient, when set, carries every request (tests reach a lab through it).
	HTTPClient *http.Client
	// PartSize is the multipart part size, from MinPartSize to MaxPartSize; 0 means
	// DefaultPartSize. It must stay the same between an interrupted Upload and its rerun for the
	// parts already stored to be reused.
	PartSize int64
	// Concurrency is how many parts are sent at once, 1 to 32; 0 means DefaultConcurrency.
	Concurrency int
	// MaxAttempts is how many times the SDK tries a request, 1 to 20; 0 means its default (3).
	MaxAttempts int
	// MaxBackoff caps the wait between two attempts; 0 means the SDK's default (20s).
	MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt of a request, body included, so a stalled connection is
	// given up and retried rather than waited on for ever; 0 means DefaultAttemptTimeout. It must
	// leave time to send a part over the slowest link expected. It applies to HTTPClient too,
	// unless that has its own Timeout.
	AttemptTimeout time.Duration
}

// Store is a bucket in an S3-compatible store. It is safe for concurrent use; Uploads and Deletes
// of one key are serialized within the process.
type Store struct {
	client      *s3.Client
	bucket      string
	partSize    int64
	concurrency int
	locks       keylock.Locks[string]
}

// bucketRE is S3's bucket naming rule: 3 to 63 lowercase letters, digits, dots and hyphens,
// beginning and ending with a letter or digit.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// New checks cfg and returns a Store. It makes no request.
func New(cfg Config) (*Store, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("objstore: endpoint %q is not a base URL; want http(s)://host[:port], such as https://nyc3.digitaloceanspaces.com", cfg.Endpoint)
	}
	if !bucketRE.MatchString(cfg.Bucket) {
		return nil, fmt.Errorf("objstore: bucket %q is not a valid bucket name; want 3 to 63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit", cfg.Bucket)
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, fmt.Errorf("objstore: the access key ID and the secret access key are both required (got an empty %s)", emptyName(cfg))
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("objstore: part size %d is out of range; want %d (5 MiB) to %d (5 GiB), or 0 for %d", cfg.PartSize, MinPartSize, int64(MaxPartSize), DefaultPartSize)
	}
	concurrency := cfg.Concurrency
	if concurrency == 0 {
		concurrency = DefaultConcurrency
	}
	if concurrency < 1 || concurrency > 32 {
		return nil, fmt.Errorf("objstore: concurrency %d is out of range; want 1 to 32, or 0 for %d", cfg.Concurrency, DefaultConcurrency)
	}
	if cfg.MaxAttempts < 0 || cfg.MaxAttempts > 20 {
		return nil, fmt.Errorf("objstore: max attempts %d is out of range; want 1 to 20, or 0 for the SDK's default", cfg.MaxAttempts)
	}
	if cfg.MaxBackoff < 0 {
		return nil, fmt.Errorf("objstore: max backoff %s is negative; want a positive duration, or 0 for the SDK's default", cfg.MaxBackoff)
	}
	timeout := cfg.AttemptTimeout
	if timeout == 0 {
		timeout = DefaultAttemptTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("objstore: attempt timeout %s is negative; want a positive duration, or 0 for %s", cfg.AttemptTimeout, DefaultAttemptTimeout)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: cfg.UsePathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		// The SDK's default since 2025 adds CRC32 checksums (and aws-chunked bodies) that
		// S3-compatible stores have refused; parts carry Content-MD5 instead, which they all check.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			if cfg.MaxAttempts > 0 {
				o.MaxAttempts = cfg.MaxAttempts
			}
			if cfg.MaxBackoff > 0 {
				o.MaxBackoff = cfg.MaxBackoff
			}
		}),
	}
	// An http.Client's Timeout ends one attempt; the SDK's retryer sees a timeout, retryable.
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		if c.Timeout == 0 {
			c.Timeout = timeout
		}
		opts.HTTPClient = &c
	} else {
		opts.HTTPClient = awshttp.NewBuildableClient().WithTimeout(timeout)
	}
	return &Store{client: s3.New(opts), bucket: cfg.Bucket, partSize: partSize, concurrency: concurrency}, nil
}

func emptyName(cfg Config) string {
	if cfg.AccessKeyID == "" {
		return "access key ID"
	}
	return "secret access key"
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Presign returns a URL that lets anyone GET the object at key for ttl (at most MaxPresignTTL),
// with no other credential: what a platform's import fetches. It makes no request, so it succeeds
// whether or not the object exists. Safe for concurrent use.
func (s *Store) Presign(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxPresignTTL {
		return "", fmt.Errorf("objstore: presign ttl %s is out of range; want more than 0 and at most %s", ttl, MaxPresignTTL)
	}
	req, err := s3.NewPresignClient(s.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("objstore: presign %s/%s: %w", s.bucket, key, err)
	}
	return req.URL, nil
}

// Delete removes the object at key and aborts every unfinished multipart upload of key, so nothing
// of it is left to pay for. Idempotent: a missing object or upload is no error. A failure part way
// leaves what was not yet removed; a rerun removes it.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	unlock, err := s.locks.Lock(ctx, key)
	if err != nil {
		return fmt.Errorf("objstore: delete %s/%s: %w", s.bucket, key, err)
	}
	defer unlock()
	uploads, err := s.unfinished(ctx, key)
	if err != nil {
		return err
	}
	for _, id := range uploads {
		if err := s.abort(ctx, key, id); err != nil {
			return err
		}
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil && !isCode(err, "NoSuchKey", "NotFound") {
		return fmt.Errorf("objstore: delete %s/%s: %w", s.bucket, key, err)
	}
	return nil
}

// abort aborts one multipart upload; one already gone is no error.
func (s *Store) abort(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &uploadID})
	if err != nil && !isCode(err, "NoSuchUpload", "NotFound") {
		return fmt.Errorf("objstore: abort upload %s of %s/%s: %w", uploadID, s.bucket, key, err)
	}
	return nil
}

// Keys returns the keys under prefix that hold something to pay for: stored objects and
// unfinished multipart uploads, sorted, each once. A sweep after a crash Deletes those no image
// claims. Read-only and safe for concurrent use; an Upload running meanwhile may or may not show.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	seen := map[string]bool{}
	objs := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for objs.HasMorePages() {
		page, err := objs.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("objstore: list objects under %s/%s: %w", s.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			seen[aws.ToString(o.Key)] = true
		}
	}
	ups := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &prefix})
	for ups.HasMorePages() {
		page, err := ups.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("objstore: list unfinished uploads under %s/%s: %w", s.bucket, prefix, err)
		}
		for _, u := range page.Uploads {
			seen[aws.ToString(u.Key)] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// unfinished returns the IDs of the unfinished multipart uploads of exactly key, oldest first.
func (s *Store) unfinished(ctx context.Context, key string) ([]string, error) {
	var ids []string
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &key})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("objstore: list unfinished uploads of %s/%s: %w", s.bucket, key, err)
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) == key {
				ids = append(ids, aws.ToString(u.UploadId))
			}
		}
	}
	return ids, nil
}

func checkKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("objstore: object key %q is invalid; want 1 to 1024 bytes", key)
	}
	return nil
}

// isCode reports whether err is an S3 error with one of codes (HEAD answers carry no body, so a
// missing object there is "NotFound").
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
