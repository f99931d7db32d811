package s3lab

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// diskParts is gofakes3's multipart half (gofakes3.MultipartBackend) with the parts in files:
// gofakes3's own keeps every part in memory and then a joined copy, three times the object in
// all, which for a cloud image of a gigabyte or more is too much for a test machine. Completing an
// upload streams the parts, in order, into the object store.
type diskParts struct {
	dir     string
	storage gofakes3.Backend

	mu      sync.Mutex
	next    int
	uploads map[gofakes3.UploadID]*diskUpload
}

type diskUpload struct {
	bucket, key string
	id          gofakes3.UploadID
	meta        map[string]string
	initiated   time.Time
	parts       map[int]*diskPart
}

type diskPart struct {
	path     string
	size     int64
	etag     string // quoted MD5
	modified time.Time
}

var _ gofakes3.MultipartBackend = (*diskParts)(nil)

func newDiskParts(dir string, storage gofakes3.Backend) *diskParts {
	return &diskParts{dir: dir, storage: storage, uploads: map[gofakes3.UploadID]*diskUpload{}}
}

func (d *diskParts) CreateMultipartUpload(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	if ok, err := d.storage.BucketExists(bucket); err != nil || !ok {
		return "", gofakes3.BucketNotFound(bucket)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	id := gofakes3.UploadID(fmt.Sprintf("%08d", d.next))
	d.uploads[id] = &diskUpload{bucket: bucket, key: object, id: id, meta: meta, initiated: time.Now(), parts: map[int]*diskPart{}}
	return id, nil
}

// upload returns the upload id of bucket/object; d.mu is held.
func (d *diskParts) upload(bucket, object string, id gofakes3.UploadID) (*diskUpload, error) {
	u := d.uploads[id]
	if u == nil || u.bucket != bucket || u.key != object {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

func (d *diskParts) UploadPart(bucket, object string, id gofakes3.UploadID, partNumber int, contentLength int64, input io.Reader) (string, error) {
	if partNumber < 1 || partNumber > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	f, err := os.CreateTemp(d.dir, "part-*")
	if err != nil {
		return "", err
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), input)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != contentLength {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	d.mu.Lock()
	defer d.mu.Unlock()
	u, err := d.upload(bucket, object, id)
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	if old := u.parts[partNumber]; old != nil {
		os.Remove(old.path) // a part sent again replaces the first
	}
	u.parts[partNumber] = &diskPart{path: f.Name(), size: n, etag: etag, modified: time.Now()}
	return etag, nil
}

func (d *diskParts) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var list []*diskUpload
	for _, u := range d.uploads {
		if u.bucket != bucket || !prefix.Match(u.key, nil) {
			continue
		}
		if marker != nil && (u.key < marker.Object || (u.key == marker.Object && (marker.UploadID == "" || u.id <= marker.UploadID))) {
			continue
		}
		list = append(list, u)
	}
	slices.SortFunc(list, func(a, b *diskUpload) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(string(a.id), string(b.id)) // ids grow with initiation
	})
	out := &gofakes3.ListMultipartUploadsResult{Bucket: bucket, Prefix: prefix.Prefix, MaxUploads: limit}
	if marker != nil {
		out.KeyMarker, out.UploadIDMarker = marker.Object, marker.UploadID
	}
	if limit > 0 && int64(len(list)) > limit {
		list = list[:limit]
		out.IsTruncated = true
		out.NextKeyMarker, out.NextUploadIDMarker = list[len(list)-1].key, list[len(list)-1].id
	}
	for _, u := range list {
		out.Uploads = append(out.Uploads, gofakes3.ListMultipartUploadItem{Key: u.key, UploadID: u.id, StorageClass: "STANDARD", Initiated: gofakes3.NewContentTime(u.initiated)})
	}
	return out, nil
}

func (d *diskParts) ListParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, err := d.upload(bucket, object, id)
	if err != nil {
		return nil, err
	}
	numbers := slices.Sorted(func(yield func(int) bool) {
		for n := range u.parts {
			if n > marker && !yield(n) {
				return
			}
		}
	})
	out := &gofakes3.ListMultipartUploadPartsResult{Bucket: bucket, Key: object, UploadID: id, PartNumberMarker: marker, MaxParts: limit, StorageClass: "STANDARD"}
	if limit > 0 && int64(len(numbers)) > limit {
		numbers = numbers[:limit]
		out.IsTruncated = true
		out.NextPartNumberMarker = numbers[len(numbers)-1]
	}
	for _, n := range numbers {
		p := u.parts[n]
		out.Parts = append(out.Parts, gofakes3.ListMultipartUploadPartItem{PartNumber: n, ETag: p.etag, Size: p.size, LastModified: gofakes3.NewContentTime(p.modified)})
	}
	return out, nil
}

func (d *diskParts) AbortMultipartUpload(bucket, object string, id gofakes3.UploadID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, err := d.upload(bucket, object, id)
	if err != nil {
		return err
	}
	d.drop(u)
	return nil
}

// drop forgets u and removes its files; d.mu is held.
func (d *diskParts) drop(u *diskUpload) {
	for _, p := range u.parts {
		os.Remove(p.path)
	}
	delete(d.uploads, u.id)
}

// CompleteMultipartUpload joins the parts named, in order, into the object. The lock is held
// throughout, so no part changes meanwhile: completions are serialized, which a test store can
// afford.
func (d *diskParts) CompleteMultipartUpload(bucket, object string, id gofakes3.UploadID, input *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, err := d.upload(bucket, object, id)
	if err != nil {
		return "", "", err
	}
	if len(input.Parts) == 0 {
		return "", "", gofakes3.ErrMalformedXML
	}
	var (
		readers []io.Reader
		size    int64
		sums    = md5.New()
	)
	for i, in := range input.Parts {
		if i > 0 && in.PartNumber <= input.Parts[i-1].PartNumber {
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		p := u.parts[in.PartNumber]
		if p == nil || strings.Trim(in.ETag, `"`) != strings.Trim(p.etag, `"`) {
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded with ETag %s", in.PartNumber, in.ETag)
		}
		f, err := os.Open(p.path)
		if err != nil {
			return "", "", err
		}
		defer f.Close()
		readers = append(readers, f)
		size += p.size
		raw, _ := hex.DecodeString(strings.Trim(p.etag, `"`))
		sums.Write(raw)
	}
	res, err := d.storage.PutObject(bucket, object, u.meta, io.MultiReader(readers...), size, nil)
	if err != nil {
		return "", "", err
	}
	d.drop(u)
	return res.VersionID, fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(input.Parts)), nil
}

// partsDir makes the directory diskParts keeps its files in.
func partsDir(tmp string) (string, error) {
	dir := filepath.Join(tmp, "parts")
	return dir, os.MkdirAll(dir, 0o700)
}
