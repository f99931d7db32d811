package objstore

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// part is one slice of the file, numbered from 1 as S3 numbers parts.
type part struct {
	number       int32
	offset, size int64
	md5          []byte
}

// Upload stores the file at path as the object at key, in parts of Config.PartSize sent
// Config.Concurrency at a time, with the file's SHA-256 as user metadata (x-amz-meta-sha256).
//
// Idempotent: when the object is already there with the same size and SHA-256, nothing is sent.
// Resumable: when an unfinished multipart upload of key holds parts of this file (same size and
// ETag, the MD5 of the part), only the missing parts are sent before it is completed; an
// unfinished upload holding other bytes is aborted. The file must not change while it is read.
//
// progress, when not nil, is told the bytes stored so far over the file's size (parts already
// stored count at once), one call at a time (it should return quickly: parts wait on it), sent
// only growing, last with sent == total.
//
// Safe for concurrent use; Uploads of one key wait for each other within the process. A failure
// or a cancelled ctx leaves an unfinished multipart upload with the parts that arrived, which the
// next Upload of key resumes and Delete aborts.
func (s *Store) Upload(ctx context.Context, key, path string, progress func(sent, total int64)) error {
	if err := checkKey(key); err != nil {
		return err
	}
	unlock, err := s.locks.Lock(ctx, key)
	if err != nil {
		return fmt.Errorf("objstore: upload %s/%s: %w", s.bucket, key, err)
	}
	defer unlock()
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("objstore: upload %s/%s: %w", s.bucket, key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("objstore: upload %s/%s: %w", s.bucket, key, err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return fmt.Errorf("objstore: upload %s/%s: %s is not a non-empty regular file", s.bucket, key, path)
	}
	size := st.Size()
	if n := (size + s.partSize - 1) / s.partSize; n > maxParts {
		return fmt.Errorf("objstore: upload %s/%s: %s is %d bytes, %d parts of %d; S3 allows %d parts, so raise the part size", s.bucket, key, path, size, n, s.partSize, maxParts)
	}
	parts, sum, err := s.plan(ctx, f, size)
	if err != nil {
		return fmt.Errorf("objstore: upload %s/%s: read %s: %w", s.bucket, key, path, err)
	}
	report := &reporter{fn: progress, total: size}
	if ok, err := s.stored(ctx, key, size, sum); err != nil || ok {
		if ok {
			report.add(size)
		}
		return err
	}
	// A resumed upload was begun by an earlier run; if that run read other bytes whose parts
	// happen to match ours, the object completes with our bytes but its sha256 metadata. The
	// check after completing catches that and uploads afresh once.
	for _, resume := range []bool{true, false} {
		report.reset()
		if err := s.uploadOnce(ctx, key, f, parts, sum, report, resume); err != nil {
			return err
		}
		ok, err := s.stored(ctx, key, size, sum)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("objstore: upload %s/%s: the completed object does not carry size %d and sha256 %s", s.bucket, key, size, sum)
}

// plan reads the file once: the parts with their MD5s, and the hex SHA-256 of the whole.
func (s *Store) plan(ctx context.Context, f *os.File, size int64) ([]part, string, error) {
	whole := sha256.New()
	var parts []part
	for off, n := int64(0), int32(1); off < size; off, n = off+s.partSize, n+1 {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		p := part{number: n, offset: off, size: min(s.partSize, size-off)}
		h := md5.New()
		if _, err := io.Copy(io.MultiWriter(whole, h), io.NewSectionReader(f, p.offset, p.size)); err != nil {
			return nil, "", err
		}
		p.md5 = h.Sum(nil)
		parts = append(parts, p)
	}
	return parts, hex.EncodeToString(whole.Sum(nil)), nil
}

// stored reports whether the object at key holds size bytes whose SHA-256 is sum.
func (s *Store) stored(ctx context.Context, key string, size int64, sum string) (bool, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if isCode(err, "NotFound", "NoSuchKey") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("objstore: head %s/%s: %w", s.bucket, key, err)
	}
	return aws.ToInt64(out.ContentLength) == size && out.Metadata[checksumKey] == sum, nil
}

// uploadOnce resumes (when resume) or begins a multipart upload of key, sends the parts it lacks
// and completes it.
func (s *Store) uploadOnce(ctx context.Context, key string, f *os.File, parts []part, sum string, report *reporter, resume bool) error {
	var uploadID string
	have := map[int32]bool{}
	if resume {
		var err error
		if uploadID, have, err = s.resumable(ctx, key, parts); err != nil {
			return err
		}
	}
	if uploadID == "" {
		out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: &s.bucket, Key: &key, ContentType: aws.String("application/octet-stream"),
			Metadata: map[string]string{checksumKey: sum},
		})
		if err != nil {
			return fmt.Errorf("objstore: begin upload of %s/%s: %w", s.bucket, key, err)
		}
		uploadID = aws.ToString(out.UploadId)
	}
	var missing []part
	for _, p := range parts {
		if have[p.number] {
			report.add(p.size)
		} else {
			missing = append(missing, p)
		}
	}
	if err := s.sendParts(ctx, key, uploadID, f, missing, report); err != nil {
		return err
	}
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		done[i] = types.CompletedPart{PartNumber: aws.Int32(p.number), ETag: aws.String(`"` + hex.EncodeToString(p.md5) + `"`)}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		// The store may have completed it and lost the answer; a retry then finds no upload.
		if ok, herr := s.stored(ctx, key, report.total, sum); herr == nil && ok {
			return nil
		}
		return fmt.Errorf("objstore: complete upload %s of %s/%s: %w", uploadID, s.bucket, key, err)
	}
	return nil
}

// resumable finds the unfinished upload of key holding the most parts of this file and returns its
// ID and those parts. Uploads holding a part of other bytes are aborted: they are of another file.
func (s *Store) resumable(ctx context.Context, key string, parts []part) (string, map[int32]bool, error) {
	ids, err := s.unfinished(ctx, key)
	if err != nil {
		return "", nil, err
	}
	best, bestHave := "", map[int32]bool{}
	for _, id := range slices.Backward(ids) {
		have, foreign, err := s.matchingParts(ctx, key, id, parts)
		if err != nil {
			return "", nil, err
		}
		if foreign {
			if err := s.abort(ctx, key, id); err != nil {
				return "", nil, err
			}
			continue
		}
		if best == "" || len(have) > len(bestHave) {
			best, bestHave = id, have
		}
	}
	return best, bestHave, nil
}

// matchingParts lists the parts of upload id and returns those equal to ours (number, size and
// ETag = MD5); foreign is true when one differs.
func (s *Store) matchingParts(ctx context.Context, key, id string, parts []part) (have map[int32]bool, foreign bool, err error) {
	have = map[int32]bool{}
	pg := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{Bucket: &s.bucket, Key: &key, UploadId: &id})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if isCode(err, "NoSuchUpload") {
			return nil, false, nil // finished or aborted meanwhile
		}
		if err != nil {
			return nil, false, fmt.Errorf("objstore: list parts of upload %s of %s/%s: %w", id, s.bucket, key, err)
		}
		for _, got := range page.Parts {
			n := aws.ToInt32(got.PartNumber)
			if n < 1 || int(n) > len(parts) {
				foreign = true
				continue
			}
			want := parts[n-1]
			etag := strings.Trim(aws.ToString(got.ETag), `"`)
			if aws.ToInt64(got.Size) == want.size && strings.EqualFold(etag, hex.EncodeToString(want.md5)) {
				have[n] = true
			} else {
				foreign = true
			}
		}
	}
	return have, foreign, nil
}

// sendParts sends parts, s.concurrency at a time; the first failure stops the others.
func (s *Store) sendParts(ctx context.Context, key, uploadID string, f *os.File, parts []part, report *reporter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan part)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(s.concurrency, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				if err := s.sendPart(ctx, key, uploadID, f, p); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					continue
				}
				report.add(p.size)
			}
		}()
	}
feed:
	for _, p := range parts {
		select {
		case jobs <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("objstore: upload %s/%s: %w", s.bucket, key, ctx.Err())
	}
	return firstErr
}

// sendPart sends one part with its Content-MD5 (the store checks it) and checks the ETag answered.
func (s *Store) sendPart(ctx context.Context, key, uploadID string, f *os.File, p part) error {
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &s.bucket, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(p.number),
		Body: io.NewSectionReader(f, p.offset, p.size), ContentLength: aws.Int64(p.size),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(p.md5)),
	})
	if err != nil {
		return fmt.Errorf("objstore: send part %d of %s/%s: %w", p.number, s.bucket, key, err)
	}
	want := hex.EncodeToString(p.md5)
	if got := strings.Trim(aws.ToString(out.ETag), `"`); !strings.EqualFold(got, want) {
		return fmt.Errorf("objstore: send part %d of %s/%s: the store answered ETag %q, want %q (the part's MD5)", p.number, s.bucket, key, got, want)
	}
	return nil
}

// reporter serializes progress calls and keeps sent growing.
type reporter struct {
	mu          sync.Mutex
	fn          func(sent, total int64)
	sent, total int64
	high        int64 // the most reported, so a fresh second pass never reports less
}

func (r *reporter) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = 0
}

func (r *reporter) add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent += n
	if r.fn != nil && r.sent > r.high {
		r.high = r.sent
		r.fn(r.sent, r.total)
	}
}
