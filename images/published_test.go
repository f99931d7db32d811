package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestPublishedRecordAndForget(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	m := addImage(t, c, "web", id("aaaa11"), time.Now(), nil, "")
	if refs, err := c.Published(m.Identity); err != nil || len(refs) != 0 {
		t.Fatalf("Published of a new image = %v, %v; want none", refs, err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	east := PublishedRef{Compute: "prod", Type: "aws", Region: "us-east-1", ID: "ami-1", Created: at}
	west := PublishedRef{Compute: "prod", Type: "aws", Region: "eu-west-1", ID: "ami-2", Created: at}
	for _, r := range []PublishedRef{east, west, east} {
		if err := c.RecordPublished(m.Identity, r); err != nil {
			t.Fatal(err)
		}
	}
	refs, err := c.Published(m.Identity)
	if err != nil || len(refs) != 2 || refs[0] != west || refs[1] != east {
		t.Fatalf("Published = %+v, %v; want west then east, once each", refs, err)
	}
	// A new copy in the same block and region replaces the old record.
	again := east
	again.ID = "ami-3"
	if err := c.RecordPublished(m.Identity, again); err != nil {
		t.Fatal(err)
	}
	if refs, _ := c.Published(m.Identity); len(refs) != 2 || refs[1].ID != "ami-3" {
		t.Fatalf("after a republish: %+v; want ami-3 in place of ami-1", refs)
	}
	// Forgetting the old ID leaves the new one; forgetting twice is fine.
	if err := c.ForgetPublished(m.Identity, east); err != nil {
		t.Fatal(err)
	}
	if refs, _ := c.Published(m.Identity); len(refs) != 2 {
		t.Fatalf("forgetting a replaced copy removed %+v", refs)
	}
	for range 2 {
		if err := c.ForgetPublished(m.Identity, again); err != nil {
			t.Fatal(err)
		}
	}
	if refs, _ := c.Published(m.Identity); len(refs) != 1 || refs[0] != west {
		t.Fatalf("after forgetting ami-3: %+v; want only west", refs)
	}
	// No temporary files are left beside the manifest.
	left, _ := filepath.Glob(filepath.Join(c.ImageDir(m.Identity), ".published-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// The manifest is untouched: the list is its own file.
	if got, err := c.Get(m.Identity); err != nil || got.Identity != m.Identity {
		t.Errorf("Get after recording: %v, %v", got, err)
	}
}

func TestPublishedErrors(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	ref := PublishedRef{Compute: "prod", Type: "aws", ID: "ami-1"}
	if err := c.RecordPublished(id("ffff99"), ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordPublished of an image not in the catalog: %v, want ErrNotFound", err)
	}
	if _, err := c.Published(id("ffff99")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Published of an image not in the catalog: %v, want ErrNotFound", err)
	}
	m := addImage(t, c, "web", id("aaaa11"), time.Now(), nil, "")
	if err := c.RecordPublished(m.Identity, PublishedRef{Compute: "prod"}); err == nil {
		t.Error("a reference without an ID was recorded")
	}
	if err := os.WriteFile(filepath.Join(c.ImageDir(m.Identity), publishedFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Published(m.Identity); err == nil {
		t.Error("a damaged published.json read as a list")
	}
	if err := c.RecordPublished(m.Identity, ref); err == nil {
		t.Error("a damaged published.json was overwritten instead of reported")
	}
}

// Concurrent writers each add their block's copy; none is lost.
func TestPublishedConcurrentWriters(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	m := addImage(t, c, "web", id("aaaa11"), time.Now(), nil, "")
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.RecordPublished(m.Identity, PublishedRef{Compute: fmt.Sprintf("block%02d", i), Type: "aws", ID: fmt.Sprint("ami-", i)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if refs, err := c.Published(m.Identity); err != nil || len(refs) != len(errs) {
		t.Fatalf("after %d concurrent records: %d refs, %v", len(errs), len(refs), err)
	}
}

func TestPrunableIsWhatPruneRemoves(t *testing.T) {
	c := OpenCatalog(t.TempDir())
	now := time.Now()
	addImage(t, c, "web", id("aaaa11"), now.Add(-3*time.Hour), nil, "")
	addImage(t, c, "web", id("aaaa22"), now.Add(-2*time.Hour), nil, "")
	addImage(t, c, "web", id("bbbb33"), now.Add(-1*time.Hour), nil, "")
	inUse := func(identity string) bool { return identity == id("aaaa11") }
	prunable, err := c.Prunable(1, inUse)
	if err != nil || len(prunable) != 1 || prunable[0].Identity != id("aaaa22") {
		t.Fatalf("Prunable = %v, %v; want only aaaa22 (the newest is kept, aaaa11 is in use)", prunable, err)
	}
	if !c.Has(id("aaaa22")) {
		t.Fatal("Prunable removed something")
	}
	removed, err := c.Prune(1, inUse)
	if err != nil || len(removed) != 1 || removed[0].Identity != prunable[0].Identity {
		t.Fatalf("Prune removed %v, %v; Prunable said %v", removed, err, prunable)
	}
}
