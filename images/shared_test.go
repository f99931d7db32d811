package images

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/memory"
)

// Two machines (two state directories) sharing one store: what one builds and publishes, the other
// lists, reads and may skip building, without its disk.
func TestSharedCatalogAcrossMachines(t *testing.T) {
	st := memory.New()
	ctx := context.Background()
	a := OpenCatalog(t.TempDir()).Share(ctx, st)
	b := OpenCatalog(t.TempDir()).Share(ctx, st)

	m := addImage(t, a, "web", id("aaaa11"), time.Now(), []Package{{Name: "nginx", Version: "1.22"}}, "")
	if it, err := st.Get(ctx, "catalog/manifests/"+hexOf(m.Identity)); err != nil || !strings.Contains(string(it.Value), `"role": "web"`) {
		t.Fatalf("the store's manifest after A's commit: %q, %v", it.Value, err)
	}
	if b.Has(m.Identity) {
		t.Fatal("B's disk cache has an image it never built")
	}
	if ok, err := b.Known(m.Identity); !ok || err != nil {
		t.Fatalf("B.Known: %v, %v", ok, err)
	}
	all, err := b.List()
	if err != nil || len(all) != 1 || all[0].Identity != m.Identity || !all[0].DiskElsewhere() || len(all[0].Packages) != 1 {
		t.Fatalf("B.List: %v, %v", all, err)
	}
	if got, err := b.Resolve("web"); err != nil || got.Identity != m.Identity || !got.DiskElsewhere() {
		t.Fatalf("B.Resolve(web): %v, %v", got, err)
	}
	if got, err := a.Get(m.Identity); err != nil || got.DiskElsewhere() {
		t.Fatalf("A.Get: %+v, %v: its own image is local", got, err)
	}
	if _, err := b.PublishSource(all[0]); err == nil || !strings.Contains(err.Error(), "built on another machine") {
		t.Errorf("B.PublishSource of an image whose disk is elsewhere: %v", err)
	}
	if p, err := b.Prunable(0, nil); err != nil || len(p) != 0 {
		t.Errorf("B.Prunable: %v, %v: only the local disk cache is pruned", p, err)
	}

	// Published on "cloud" by A: B sees it, and a build of web deployed on cloud is covered there.
	ref := PublishedRef{Compute: "cloud", Type: "aws", Region: "eu-1", ID: "ami-1", Created: time.Now()}
	if err := a.RecordPublished(m.Identity, ref); err != nil {
		t.Fatal(err)
	}
	if refs, err := b.Published(m.Identity); err != nil || len(refs) != 1 || refs[0].ID != "ami-1" {
		t.Fatalf("B.Published: %v, %v", refs, err)
	}
	if got, ok, err := b.Covered(m.Identity, []string{"cloud"}); !ok || err != nil || got.Identity != m.Identity {
		t.Errorf("B.Covered(cloud): %v, %v", ok, err)
	}
	if _, ok, _ := b.Covered(m.Identity, []string{"cloud", "lab"}); ok {
		t.Error("covered although nothing is published on lab (a compute that boots the local disk)")
	}
	if _, ok, _ := b.Covered(id("bbbb22"), []string{"cloud"}); ok {
		t.Error("an image nobody built is covered")
	}

	// B publishes the image on a second block without its disk (the provider had it): the store
	// gets it, and A's list joins its own and the store's.
	if err := b.RecordPublished(m.Identity, PublishedRef{Compute: "cloud2", Type: "aws", ID: "ami-2", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	refs, err := a.Published(m.Identity)
	if err != nil || len(refs) != 2 || refs[0].Compute != "cloud" || refs[1].Compute != "cloud2" {
		t.Fatalf("A.Published after B's record: %v, %v", refs, err)
	}
	if err := b.ForgetPublished(m.Identity, refs[1]); err != nil {
		t.Fatal(err)
	}
	if refs, _ := a.Published(m.Identity); len(refs) != 1 {
		t.Errorf("after B forgot cloud2, A sees %v", refs)
	}
	if err := b.RecordPublished(id("cccc33"), ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("recording a copy of an image in neither catalog: %v, want ErrNotFound", err)
	}
}

// A manifest of an identity the store already has is not overwritten: the first record wins.
func TestSharedManifestFirstWins(t *testing.T) {
	st := memory.New()
	ctx := context.Background()
	a := OpenCatalog(t.TempDir()).Share(ctx, st)
	b := OpenCatalog(t.TempDir()).Share(ctx, st)
	addImage(t, a, "web", id("aaaa11"), time.Unix(1000, 0), nil, "")
	addImage(t, b, "web", id("aaaa11"), time.Unix(2000, 0), nil, "") // the same inputs, built again
	it, err := st.Get(ctx, "catalog/manifests/"+hexOf(id("aaaa11")))
	if err != nil || it.Version == 0 {
		t.Fatal(err)
	}
	shared, err := decodeShared(it)
	if err != nil || !shared.Created.Equal(time.Unix(1000, 0)) {
		t.Errorf("the store's manifest: %+v, %v; want A's, the first", shared, err)
	}
}

// Writers on many machines record copies of one image at once: compare-and-swap with a retry
// keeps every one.
func TestSharedPublishedConcurrentWriters(t *testing.T) {
	st := memory.New()
	ctx := context.Background()
	m := addImage(t, OpenCatalog(t.TempDir()).Share(ctx, st), "web", id("aaaa11"), time.Now(), nil, "")
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := OpenCatalog(t.TempDir()).Share(ctx, st) // another machine: the image is not on its disk
			errs[i] = c.RecordPublished(m.Identity, PublishedRef{Compute: fmt.Sprintf("block%02d", i), Type: "aws", ID: fmt.Sprint("ami-", i)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	refs, version, err := OpenCatalog(t.TempDir()).Share(ctx, st).sharedPublished(m.Identity)
	if err != nil || len(refs) != len(errs) || version == 0 {
		t.Fatalf("after %d concurrent records: %d refs, %v", len(errs), len(refs), err)
	}
}

// A store that fails: the commit keeps the image locally and says it is not in the store.
func TestSharedCommitStoreFailure(t *testing.T) {
	st := memory.New()
	c := OpenCatalog(t.TempDir()).Share(context.Background(), st)
	st.Close()
	s, err := c.Stage(id("aaaa11"))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Commit(&Manifest{Identity: id("aaaa11"), Role: "web"})
	if !errors.Is(err, store.ErrClosed) || !strings.Contains(err.Error(), "is in the local catalog") {
		t.Errorf("commit with a closed store: %v", err)
	}
	if !c.Has(id("aaaa11")) {
		t.Error("the image is not in the local catalog")
	}
}

// MigrateTo: manifests created where missing and kept where present; published copies joined with
// the store's, the newer per place kept; a dry run writes nothing; a rerun is all "same".
func TestMigrateCatalog(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	local := OpenCatalog(t.TempDir()) // not shared: the state of a machine before the move
	web := addImage(t, local, "web", id("aaaa11"), time.Unix(1000, 0), nil, "")
	db := addImage(t, local, "db", id("bbbb22"), time.Unix(1000, 0), nil, "")
	old := time.Unix(2000, 0).UTC()
	for _, ref := range []PublishedRef{{Compute: "cloud", Type: "aws", ID: "ami-old", Created: old}, {Compute: "cloud2", Type: "aws", ID: "ami-2", Created: old}} {
		if err := local.RecordPublished(web.Identity, ref); err != nil {
			t.Fatal(err)
		}
	}
	// The store already knows db, and a newer copy of web on cloud.
	team := OpenCatalog(t.TempDir()).Share(ctx, st)
	if err := team.ShareManifest(db); err != nil {
		t.Fatal(err)
	}
	if err := team.ShareManifest(web); err != nil {
		t.Fatal(err)
	}
	if err := team.RecordPublished(web.Identity, PublishedRef{Compute: "cloud", Type: "aws", ID: "ami-new", Created: old.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, sharedManifestKey(web.Identity), 0); err != nil {
		t.Fatal(err)
	}
	actions := func(ch []MigrateChange) string {
		var s []string
		for _, c := range ch {
			s = append(s, strings.TrimPrefix(strings.TrimPrefix(c.Key, SharedManifestPrefix), SharedPublishedPrefix)[:4]+":"+strings.Split(c.Key, "/")[1]+"="+c.Action)
		}
		return strings.Join(s, " ")
	}
	want := "bbbb:manifests=same aaaa:manifests=copied aaaa:published=updated"
	ch, err := local.MigrateTo(ctx, st, true)
	if err != nil || actions(ch) != want {
		t.Fatalf("dry run: %s, %v; want %s", actions(ch), err, want)
	}
	if m, _ := team.sharedManifest(web.Identity); m != nil {
		t.Fatal("the dry run wrote web's manifest")
	}
	ch, err = local.MigrateTo(ctx, st, false)
	if err != nil || actions(ch) != want || !strings.Contains(ch[2].Detail, "1 kept: the store's are newer") {
		t.Fatalf("migrate: %s (%v), %v; want %s", actions(ch), ch, err, want)
	}
	refs, _, err := team.sharedPublished(web.Identity)
	if err != nil || len(refs) != 2 || refs[0].ID != "ami-new" || refs[1].ID != "ami-2" {
		t.Fatalf("the store's copies after the migration: %v, %v; want the newer on cloud and cloud2's", refs, err)
	}
	ch, err = local.MigrateTo(ctx, st, false)
	if want := "bbbb:manifests=same aaaa:manifests=same aaaa:published=kept"; err != nil || actions(ch) != want {
		t.Fatalf("migrate again: %s, %v; want %s", actions(ch), err, want)
	}
}
