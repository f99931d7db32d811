package vultr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
)

// dirStore is an ObjectStore in a directory, served over HTTP for the fake's download: uploads
// go in 256 KiB chunks, checking ctx between them, and resume from what an interrupted one
// stored. It stands in for Vultr Object Storage in these tests.
type dirStore struct {
	dir  string
	srv  *httptest.Server
	mu   sync.Mutex
	sent int64
	gate chan struct{} // when set, downloads wait for it to close
}

func newDirStore(t *testing.T) *dirStore {
	s := &dirStore{dir: t.TempDir()}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if r.URL.Query().Get("signature") != "ok" {
			http.Error(w, "not presigned", http.StatusForbidden)
			return
		}
		http.ServeFile(w, r, filepath.Join(s.dir, filepath.Base(r.URL.Path)))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *dirStore) path(key string) string {
	return filepath.Join(s.dir, strings.ReplaceAll(key, "/", "_"))
}

func (s *dirStore) Upload(ctx context.Context, key, path string, progress func(sent, total int64)) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	st, _ := src.Stat()
	if _, err := os.Stat(s.path(key)); err == nil {
		progress(st.Size(), st.Size())
		return nil
	}
	part := s.path(key) + ".part"
	dst, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer dst.Close()
	off, _ := dst.Seek(0, io.SeekEnd)
	if _, err := src.Seek(off, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for off < st.Size() {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf)
		if _, werr := dst.Write(buf[:n]); werr != nil {
			return werr
		}
		off += int64(n)
		s.mu.Lock()
		s.sent += int64(n)
		s.mu.Unlock()
		progress(off, st.Size())
		if err != nil && err != io.EOF {
			return err
		}
	}
	return os.Rename(part, s.path(key))
}

func (s *dirStore) Presign(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return s.srv.URL + "/" + filepath.Base(s.path(key)) + "?signature=ok", nil
}

func (s *dirStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	os.Remove(s.path(key) + ".part")
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (s *dirStore) uploaded() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

func (s *dirStore) objects(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestPublisherContract(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	store := newDirStore(t)
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		p := labProvider(t, cloud, WithObjectStore(store), WithPageSize(2))
		return computetest.PublisherFixture{
			Publisher: p,
			Uploaded:  store.uploaded,
			Content: func(ctx context.Context, ref compute.PublishedImage) ([]byte, error) {
				for _, s := range cloud.Snapshots() {
					if s.ID == ref.ID {
						return os.ReadFile(s.Path)
					}
				}
				return nil, errors.New("no such snapshot in the fake")
			},
		}
	}, computetest.PublisherOptions{})
	if left := store.objects(t); len(left) != 0 {
		t.Errorf("objects left in the store: %v", left)
	}
}

func testSource(t *testing.T) compute.PublishSource {
	t.Helper()
	data := make([]byte, 1<<20)
	rand.Read(data[:4096])
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return compute.PublishSource{Identity: "sha256:" + hex.EncodeToString(id), Role: "web", Arch: "amd64", Path: path, Size: int64(len(data))}
}

func TestPublishSnapshotFails(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	store := newDirStore(t)
	p := labProvider(t, cloud, WithObjectStore(store))
	cloud.FailSnapshots("the disk has no partition table")
	src := testSource(t)
	_, err := p.Publish(t.Context(), src, nil)
	if err == nil || !strings.Contains(err.Error(), "dropped the snapshot") {
		t.Fatalf("Publish of a disk Vultr cannot read: %v, want that Vultr dropped the snapshot", err)
	}
	if left := store.objects(t); len(left) != 0 {
		t.Errorf("a failed Publish left objects %v", left)
	}
	if _, ok, err := p.Published(t.Context(), src.Identity); ok || err != nil {
		t.Fatalf("Published after a failed Publish = %v, %v", ok, err)
	}
	ref, err := p.Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatalf("Publish again: %v", err)
	}
	if s := cloud.Snapshots(); len(s) != 1 || s[0].ID != ref.ID || !s[0].UEFI {
		t.Fatalf("snapshots %+v, want only %s, made with uefi", s, ref.ID)
	}
}

// TestPublishAdoptsPendingSnapshot: a Publish killed after Vultr accepted the URL leaves a
// pending snapshot and the object; the next Publish waits for that snapshot, uploads nothing,
// and deletes the object.
func TestPublishAdoptsPendingSnapshot(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	store := newDirStore(t)
	src := testSource(t)
	p := labProvider(t, cloud, WithObjectStore(store))
	gate := make(chan struct{})
	store.gate = gate
	ctx, cancel := context.WithCancel(t.Context())
	imports := 0
	_, err := p.Publish(ctx, src, func(pr compute.PublishProgress) {
		if pr.Phase == compute.PhaseImport {
			if imports++; imports == 2 { // the snapshot exists and is pending
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish cancelled in the import: %v", err)
	}
	if s := cloud.Snapshots(); len(s) != 1 || s[0].Status != "pending" {
		t.Fatalf("after the cancelled Publish: snapshots %+v, want one pending", s)
	}
	sent := store.uploaded()
	close(gate)
	ref, err := labProvider(t, cloud, WithObjectStore(store)).Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if store.uploaded() != sent {
		t.Errorf("the second Publish uploaded %d bytes, want none", store.uploaded()-sent)
	}
	if s := cloud.Snapshots(); len(s) != 1 || s[0].ID != ref.ID {
		t.Fatalf("snapshots %+v, want only %s", s, ref.ID)
	}
	if left := store.objects(t); len(left) != 0 {
		t.Errorf("objects left: %v", left)
	}
}
