package objstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
)

func TestUploadSendsPartsInParallelAndReportsProgress(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	s := newStore(t, lab, nil)
	path, data := writeFile(t, threeParts, 1)
	var reports [][2]int64
	var inside atomic.Int32
	err := s.Upload(context.Background(), "images/web.raw.gz", path, func(sent, total int64) {
		if inside.Add(1) > 1 {
			t.Error("progress called while another call runs")
		}
		time.Sleep(5 * time.Millisecond) // let another part finish meanwhile
		reports = append(reports, [2]int64{sent, total})
		inside.Add(-1)
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

func TestUploadRetriesAStalledPart(t *testing.T) {
	lab := s3lab.New(t, s3lab.Options{})
	lab.Fail(s3lab.Fault{Op: "UploadPart", Delay: time.Minute})
	s := newStore(t, lab, func(c *Config) { c.AttemptTimeout = 3 * time.Second })
	path, data := writeFile(t, threeParts, 18)
	start := time.Now()
	if err := s.Upload(context.Background(), "web.raw.gz", path, nil); err != nil {
		t.Fatal(err)
	}
	assertStored(t, lab, "web.raw.gz", data)
	if n := lab.Count("UploadPart"); n != 4 {
		t.Errorf("UploadPart requests = %d, want 4 (3 parts, the stalled one again)", n)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s: the stalled attempt was waited on", d)
	}
}
