package computetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/compute"
)

// PublisherFixture is one subtest's compute.Publisher and what the suite may
// ask of the platform behind it.
type PublisherFixture struct {
	Publisher compute.Publisher
	// Uploaded returns the bytes the platform has received so far, for the
	// check that publishing an image twice sends nothing the second time.
	// nil leaves only the progress events to prove it.
	Uploaded func() int64
	// Content returns the bytes of a complete copy, to check they are the
	// file's. nil skips that check.
	Content func(ctx context.Context, ref compute.PublishedImage) ([]byte, error)
}

// PublisherOptions adapt the publisher suite to a provider.
type PublisherOptions struct {
	// Size is the length of the raw disk each subtest publishes; zero means
	// 2 MiB. It holds random 512 KiB blocks and zero ones, so a provider
	// that skips zero blocks is exercised.
	Size int64
	// Arch is the image's architecture; "" means amd64.
	Arch string
	// Concurrency is how many Publish calls of one image the Concurrent
	// subtest races; zero means 4.
	Concurrency int
	// Timeout bounds each subtest; zero means 60 seconds.
	Timeout  time.Duration
	Parallel bool
	Skip     []string
}

// RunPublisher runs the contract suite of compute.Publisher:
//
//	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
//		c := memory.NewCloud("mem-1")
//		return computetest.PublisherFixture{Publisher: c, ...}
//	}, computetest.PublisherOptions{})
//
// Every subtest publishes an image of its own identity and unpublishes it
// in t.Cleanup, so fixtures may share one platform account.
func RunPublisher(t *testing.T, newFixture func(t *testing.T) PublisherFixture, opts PublisherOptions) {
	t.Helper()
	if opts.Size == 0 {
		opts.Size = 2 << 20
	}
	if opts.Arch == "" {
		opts.Arch = "amd64"
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	tests := []struct {
		name string
		fn   func(s *pubSuite)
	}{
		{"Publish/Basic", testPublish},
		{"Publish/Idempotent", testPublishTwice},
		{"Publish/Concurrent", testPublishConcurrent},
		{"Publish/Interrupted", testPublishInterrupted},
		{"Publish/Invalid", testPublishInvalid},
		{"Published/Unknown", testPublishedUnknown},
		{"Unpublish", testUnpublish},
		{"Context/Canceled", testPublishCanceled},
	}
	cases := make([]contract.Case, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, contract.Case{Name: tt.name, Fn: func(t *testing.T, ctx context.Context) {
			s := &pubSuite{t: t, f: newFixture(t), opts: opts, ctx: ctx}
			tt.fn(s)
		}})
	}
	contract.Run(t, cases, contract.Options{Timeout: opts.Timeout, Parallel: opts.Parallel, Skip: opts.Skip})
}

type pubSuite struct {
	t    *testing.T
	f    PublisherFixture
	opts PublisherOptions
	ctx  context.Context
}

// disk writes a raw disk of opts.Size (every other 512 KiB block random,
// the rest zero) and returns its source under a fresh identity.
func (s *pubSuite) disk() (compute.PublishSource, []byte) {
	s.t.Helper()
	const block = 512 << 10
	data := make([]byte, s.opts.Size)
	for off := 0; off < len(data); off += 2 * block {
		rand.Read(data[off:min(off+block, len(data))])
	}
	path := filepath.Join(s.t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	sum := sha256.Sum256(data)
	src := compute.PublishSource{Identity: "sha256:" + hex.EncodeToString(id), Role: "computetest", Arch: s.opts.Arch,
		Path: path, Size: s.opts.Size, SHA256: hex.EncodeToString(sum[:])}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		if ref, ok, err := s.f.Publisher.Published(ctx, src.Identity); err == nil && ok {
			if err := s.f.Publisher.Unpublish(ctx, ref); err != nil {
				s.t.Errorf("cleanup: Unpublish(%s): %v", ref.ID, err)
			}
		}
	})
	return src, data
}

// recorder keeps the progress events of one Publish.
type recorder struct {
	mu     sync.Mutex
	events []compute.PublishProgress
}

func (r *recorder) add(p compute.PublishProgress) {
	r.mu.Lock()
	r.events = append(r.events, p)
	r.mu.Unlock()
}

// uploaded is the bytes the events say were sent.
func (r *recorder) uploaded() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last int64
	for _, e := range r.events {
		if e.Phase == compute.PhaseUpload {
			last = e.Done
		}
	}
	return last
}

// check verifies the events follow PublishProgress's rules.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var prev *compute.PublishProgress
	var lastUpload *compute.PublishProgress
	for i := range r.events {
		e := &r.events[i]
		if e.Phase == "" {
			t.Errorf("progress event %d has no phase: %+v", i, *e)
		}
		if e.Done < 0 || e.Total < 0 || e.Total > 0 && e.Done > e.Total {
			t.Errorf("progress event %d out of range: %+v", i, *e)
		}
		if prev != nil && prev.Phase == e.Phase && e.Phase == compute.PhaseUpload && e.Done < prev.Done {
			t.Errorf("upload progress went back from %d to %d bytes", prev.Done, e.Done)
		}
		if e.Phase == compute.PhaseUpload {
			lastUpload = e
		}
		prev = e
	}
	if lastUpload != nil && lastUpload.Total > 0 && lastUpload.Done != lastUpload.Total {
		t.Errorf("the last upload event says %d of %d bytes", lastUpload.Done, lastUpload.Total)
	}
}

func (s *pubSuite) publish(src compute.PublishSource) (compute.PublishedImage, *recorder) {
	s.t.Helper()
	rec := &recorder{}
	ref, err := s.f.Publisher.Publish(s.ctx, src, rec.add)
	if err != nil {
		s.t.Fatalf("Publish(%s): %v", src.Identity, err)
	}
	rec.check(s.t)
	return ref, rec
}

func (s *pubSuite) uploaded() int64 {
	if s.f.Uploaded == nil {
		return 0
	}
	return s.f.Uploaded()
}

// same checks that ref is a complete copy of the disk, as Published reports it.
func (s *pubSuite) same(ref compute.PublishedImage, src compute.PublishSource, data []byte) {
	s.t.Helper()
	got, ok, err := s.f.Publisher.Published(s.ctx, src.Identity)
	if err != nil || !ok {
		s.t.Fatalf("Published(%s) = %v, %v after Publish returned %s", src.Identity, ok, err, ref.ID)
	}
	if got.ID != ref.ID || got.Region != ref.Region || got.Identity != src.Identity {
		s.t.Errorf("Published reports %+v, Publish returned %+v", got, ref)
	}
	if s.f.Content == nil {
		return
	}
	content, err := s.f.Content(s.ctx, ref)
	if err != nil {
		s.t.Fatalf("Content(%s): %v", ref.ID, err)
	}
	if !bytes.Equal(content, data) {
		s.t.Errorf("the copy %s holds %d bytes that are not the disk's %d", ref.ID, len(content), len(data))
	}
}

func testPublish(s *pubSuite) {
	t := s.t
	src, data := s.disk()
	before := time.Now().Add(-time.Minute)
	ref, rec := s.publish(src)
	if ref.ID == "" || ref.Identity != src.Identity {
		t.Fatalf("Publish returned %+v, want an ID and identity %s", ref, src.Identity)
	}
	if ref.Created.Before(before) || ref.Created.After(time.Now().Add(time.Minute)) {
		t.Errorf("Created = %v, want about now", ref.Created)
	}
	if rec.uploaded() == 0 {
		t.Errorf("the first Publish reported no bytes uploaded: %+v", rec.events)
	}
	s.same(ref, src, data)
}

func testPublishTwice(s *pubSuite) {
	t := s.t
	src, data := s.disk()
	first, _ := s.publish(src)
	before := s.uploaded()
	again, rec := s.publish(src)
	if again.ID != first.ID || again.Region != first.Region {
		t.Fatalf("second Publish gave %+v, first %+v", again, first)
	}
	if n := rec.uploaded(); n != 0 {
		t.Errorf("second Publish reported %d bytes uploaded, want none", n)
	}
	if after := s.uploaded(); after != before {
		t.Errorf("second Publish sent %d bytes to the platform, want none", after-before)
	}
	s.same(again, src, data)
}

func testPublishConcurrent(s *pubSuite) {
	t := s.t
	src, data := s.disk()
	refs := make([]compute.PublishedImage, s.opts.Concurrency)
	errs := make([]error, s.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refs[i], errs[i] = s.f.Publisher.Publish(s.ctx, src, nil)
		}()
	}
	wg.Wait()
	for i := range refs {
		if errs[i] != nil {
			t.Fatalf("concurrent Publish %d: %v", i, errs[i])
		}
		if refs[i].ID != refs[0].ID {
			t.Fatalf("concurrent Publishes of one image made %s and %s", refs[0].ID, refs[i].ID)
		}
	}
	s.same(refs[0], src, data)
}

// testPublishInterrupted cancels a Publish once bytes were sent: the copy is
// not reported, and the next Publish completes it (resumed or started over).
func testPublishInterrupted(s *pubSuite) {
	t := s.t
	src, data := s.disk()
	ctx, cancel := context.WithCancel(s.ctx)
	_, err := s.f.Publisher.Publish(ctx, src, func(p compute.PublishProgress) {
		if p.Phase == compute.PhaseUpload && p.Done > 0 {
			cancel()
		}
	})
	cancel()
	if err == nil {
		// The provider finished the upload in the call that reported it: a
		// complete copy is as good as an interrupted one, once verified.
		ref, _, _ := s.f.Publisher.Published(s.ctx, src.Identity)
		s.same(ref, src, data)
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted Publish: %v, want an error wrapping context.Canceled", err)
	}
	if ref, ok, err := s.f.Publisher.Published(s.ctx, src.Identity); err != nil || ok {
		t.Fatalf("after an interrupted Publish, Published = %+v, %v, %v; want nothing", ref, ok, err)
	}
	before := s.uploaded()
	ref, _ := s.publish(src)
	if s.f.Uploaded != nil && s.uploaded()-before > src.Size {
		t.Errorf("the Publish after an interruption sent %d bytes for a %d byte disk", s.uploaded()-before, src.Size)
	}
	s.same(ref, src, data)
}

func testPublishInvalid(s *pubSuite) {
	t := s.t
	src, _ := s.disk()
	missing := src
	missing.Path = filepath.Join(t.TempDir(), "no-such-disk.raw")
	truncated := src
	truncated.Size = src.Size + 1
	noIdentity := src
	noIdentity.Identity = ""
	badArch := src
	badArch.Arch = "sparc"
	for name, bad := range map[string]compute.PublishSource{"missing file": missing, "wrong size": truncated, "no identity": noIdentity, "bad arch": badArch} {
		if ref, err := s.f.Publisher.Publish(s.ctx, bad, nil); err == nil {
			t.Errorf("Publish with a %s = %+v, want an error", name, ref)
		}
	}
	if ref, ok, err := s.f.Publisher.Published(s.ctx, src.Identity); err != nil || ok {
		t.Errorf("after invalid Publishes, Published = %+v, %v, %v; want nothing", ref, ok, err)
	}
}

func testPublishedUnknown(s *pubSuite) {
	src, _ := s.disk()
	if ref, ok, err := s.f.Publisher.Published(s.ctx, src.Identity); err != nil || ok {
		s.t.Errorf("Published of an image never published = %+v, %v, %v; want not found and no error", ref, ok, err)
	}
}

func testUnpublish(s *pubSuite) {
	t := s.t
	src, data := s.disk()
	ref, _ := s.publish(src)
	if err := s.f.Publisher.Unpublish(s.ctx, ref); err != nil {
		t.Fatalf("Unpublish(%s): %v", ref.ID, err)
	}
	if got, ok, err := s.f.Publisher.Published(s.ctx, src.Identity); err != nil || ok {
		t.Fatalf("after Unpublish, Published = %+v, %v, %v; want nothing", got, ok, err)
	}
	if err := s.f.Publisher.Unpublish(s.ctx, ref); err != nil {
		t.Errorf("second Unpublish(%s): %v, want nil", ref.ID, err)
	}
	other, _ := s.disk()
	never := compute.PublishedImage{Identity: other.Identity, ID: ref.ID + "-never", Region: ref.Region}
	if err := s.f.Publisher.Unpublish(s.ctx, never); err != nil {
		t.Errorf("Unpublish of a copy that never existed: %v, want nil", err)
	}
	again, rec := s.publish(src)
	if rec.uploaded() == 0 {
		t.Errorf("Publish after Unpublish reported no bytes uploaded: it must make a new copy")
	}
	s.same(again, src, data)
}

func testPublishCanceled(s *pubSuite) {
	t := s.t
	src, _ := s.disk()
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	if _, err := s.f.Publisher.Publish(ctx, src, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a canceled context: %v, want an error wrapping context.Canceled", err)
	}
	if _, _, err := s.f.Publisher.Published(ctx, src.Identity); !errors.Is(err, context.Canceled) {
		t.Errorf("Published with a canceled context: %v, want an error wrapping context.Canceled", err)
	}
	if err := s.f.Publisher.Unpublish(ctx, compute.PublishedImage{Identity: src.Identity, ID: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Unpublish with a canceled context: %v, want an error wrapping context.Canceled", err)
	}
	if ref, ok, err := s.f.Publisher.Published(s.ctx, src.Identity); err != nil || ok {
		t.Errorf("after a canceled Publish, Published = %+v, %v, %v; want nothing", ref, ok, err)
	}
}
