package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/memory"
)

// seedRawImage puts a web image with a raw disk of n bytes in a state directory's catalog; age orders
// images (older first).
func seedRawImage(t *testing.T, state string, n int, age time.Duration) *images.Manifest {
	t.Helper()
	cat := images.OpenCatalog(state)
	disk := bytes.Repeat([]byte{byte(age / time.Hour)}, n)
	sum := sha256.Sum256(append(disk, byte(n)))
	id := "sha256:" + hex.EncodeToString(sum[:])
	st, err := cat.Stage(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "disk.raw"), disk, 0o644); err != nil {
		t.Fatal(err)
	}
	diskSum := sha256.Sum256(disk)
	m := &images.Manifest{Identity: id, Role: "web", Arch: "amd64", Created: time.Now().Add(-age), ArtifactSHA256: hex.EncodeToString(diskSum[:]),
		Artifacts: []images.Artifact{{Format: "raw", File: "disk.raw", Length: int64(n), SHA256: hex.EncodeToString(diskSum[:])}}}
	if err := st.Commit(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func testApp(json bool) (*app, *bytes.Buffer) {
	var out, errs bytes.Buffer
	a := newApp(&out, &errs, func(string) (string, bool) { return "", false })
	if json {
		a.outputFormat = "json"
	}
	return a, &out
}

// drover images publish on a compute that boots its own copy: progress, the reference, recorded in the
// catalog, shown by images show and list; a second publish uploads nothing and says so.
func TestImagesPublishText(t *testing.T) {
	state := t.TempDir()
	m := seedRawImage(t, state, 300<<10, 0)
	cat := images.OpenCatalog(state)
	cloud := memory.NewCloud("mem-1")
	to := images.PublishTarget{Compute: "prod", Type: "memcloud", Publisher: cloud}

	a, out := testApp(false)
	if err := a.publishImage(t.Context(), cat, m, to); err != nil {
		t.Fatal(err)
	}
	name := "web@" + m.ShortID()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || lines[0] != "publishing "+name+" to prod (memcloud)" || lines[1] != "upload   64.0 KiB of 300.0 KiB (21%)" {
		t.Fatalf("printed %q, want what is published where, the upload's first chunk, its end, register and the result", lines)
	}
	if !strings.HasPrefix(lines[2], "upload   300.0 KiB of 300.0 KiB (100%), ") || !strings.HasSuffix(lines[2], "iB/s") || lines[3] != "register" {
		t.Errorf("lines %q, want the end of the upload with its rate, then the register phase", lines[2:4])
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "published "+name+" on prod (memcloud): img-"+m.ShortID()+" in mem-1; 300.0 KiB uploaded in ") {
		t.Errorf("last line %q, want where the copy is and what was uploaded", last)
	}
	if n, publishes := cloud.Uploaded(); n != 300<<10 || publishes != 1 {
		t.Errorf("uploaded %d bytes in %d publishes", n, publishes)
	}

	a, out = testApp(false)
	if err := a.publishImage(t.Context(), cat, m, to); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, name+" is already published on prod (memcloud): img-"+m.ShortID()+" in mem-1, made ") ||
		!strings.HasSuffix(got, "; nothing uploaded\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("second publish printed %q, want one line saying it is there already", got)
	}
	if n, publishes := cloud.Uploaded(); n != 300<<10 || publishes != 1 {
		t.Errorf("the second publish uploaded: %d bytes in %d publishes", n, publishes)
	}

	code, stdout, stderr := drover(t, nil, "--state", state, "images", "show", "web")
	if code != 0 || !strings.Contains(stdout, "\npublished  prod (memcloud) img-"+m.ShortID()+" in mem-1, made ") {
		t.Errorf("images show: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = drover(t, nil, "--state", state, "--output", "json", "images", "show", "web")
	var shown struct {
		Identity  string
		Published []images.PublishedRef
	}
	if err := json.Unmarshal([]byte(stdout), &shown); code != 0 || err != nil || shown.Identity != m.Identity ||
		len(shown.Published) != 1 || shown.Published[0].ID != "img-"+m.ShortID() || shown.Published[0].Region != "mem-1" || shown.Published[0].Compute != "prod" {
		t.Errorf("images show --output json: exit %d, %v: %+v", code, err, shown)
	}
	code, stdout, _ = drover(t, nil, "--state", state, "images", "list")
	if code != 0 || !strings.Contains(stdout, "PUBLISHED") || !strings.Contains(stdout, "prod/mem-1") {
		t.Errorf("images list: exit %d\n%s", code, stdout)
	}
}

func TestImagesPublishJSON(t *testing.T) {
	state := t.TempDir()
	m := seedRawImage(t, state, 300<<10, 0)
	cat := images.OpenCatalog(state)
	to := images.PublishTarget{Compute: "prod", Type: "memcloud", Publisher: memory.NewCloud("mem-1")}

	events := func() []map[string]any {
		t.Helper()
		a, out := testApp(true)
		if err := a.publishImage(t.Context(), cat, m, to); err != nil {
			t.Fatal(err)
		}
		var evs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("line %q is not JSON: %v", line, err)
			}
			evs = append(evs, e)
		}
		return evs
	}
	evs := events()
	first, last := evs[0], evs[len(evs)-1]
	if first["event"] != "publish" || first["image"] != m.Identity || first["compute"] != "prod" {
		t.Errorf("first event %v", first)
	}
	var uploadEnd map[string]any
	for _, e := range evs[1 : len(evs)-1] {
		if e["event"] != "progress" {
			t.Errorf("event %v between publish and published", e)
		}
		if e["phase"] == "upload" {
			uploadEnd = e
		}
	}
	if uploadEnd == nil || uploadEnd["done"] != float64(300<<10) || uploadEnd["total"] != float64(300<<10) {
		t.Errorf("last upload event %v, want done == total == the disk", uploadEnd)
	}
	if _, ok := uploadEnd["bytes_per_second"].(float64); !ok {
		t.Errorf("upload event %v has no rate", uploadEnd)
	}
	if last["event"] != "published" || last["id"] != "img-"+m.ShortID() || last["region"] != "mem-1" || last["existing"] != false ||
		last["uploaded_bytes"] != float64(300<<10) || last["type"] != "memcloud" {
		t.Errorf("last event %v", last)
	}

	evs = events()
	if len(evs) != 2 || evs[1]["existing"] != true || evs[1]["uploaded_bytes"] != float64(0) || evs[1]["id"] != "img-"+m.ShortID() {
		t.Errorf("second publish: %v, want publish and published (existing, nothing uploaded)", evs)
	}
}

const qemuFleet = `compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    count   = 1
  }
}
`

// The lab's qemu boots the catalog's file: publishing to it is a usage error that says so.
func TestImagesPublishRefusesLocalCompute(t *testing.T) {
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(fleetFile, []byte(qemuFleet), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	seedRawImage(t, state, 4096, 0)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"images", "publish", "--to", "lab", "web"}, `compute "lab" (type qemu) boots the image's local disk file from the catalog: there is nothing to publish to it`},
		{[]string{"images", "publish", "--to", "prod", "web"}, `--to prod: ` + fleetFile + ` has no compute block "prod"`},
		{[]string{"images", "publish", "web"}, "name the compute block to publish to with --to"},
		{[]string{"images", "publish", "--to", "lab"}, "images publish takes one image"},
	} {
		code, stdout, stderr := drover(t, nil, append([]string{"--fleet", fleetFile, "--state", state}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("drover %s: exit %d, stderr %q; want exit 2 and %q\n%s", strings.Join(tc.args, " "), code, stderr, tc.want, stdout)
		}
	}
}

// Prune deletes the published copies of the images it removes, never those of an image in use or
// kept; an image whose copy cannot be deleted stays, with its reference.
func TestImagesPruneUnpublishes(t *testing.T) {
	state := t.TempDir()
	old := seedRawImage(t, state, 4096, 3*time.Hour) // in use
	mid := seedRawImage(t, state, 4096, 2*time.Hour) // pruned, copy deleted
	lost := seedRawImage(t, state, 4096, time.Hour)  // pruned, but its block is gone
	newest := seedRawImage(t, state, 4096, 0)        // kept
	cat := images.OpenCatalog(state)
	cloud := memory.NewCloud("mem-1")
	for _, m := range []*images.Manifest{old, mid, newest} {
		if _, err := cat.PublishTo(t.Context(), m, images.PublishTarget{Compute: "prod", Type: "memcloud", Publisher: cloud}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cat.RecordPublished(lost.Identity, images.PublishedRef{Compute: "gone", Type: "memcloud", ID: "img-lost"}); err != nil {
		t.Fatal(err)
	}
	open := func(_ context.Context, block string) (compute.Publisher, error) {
		if block != "prod" {
			return nil, errors.New(`compute block "` + block + `" is no longer in the fleet`)
		}
		return cloud, nil
	}
	res, err := pruneImages(t.Context(), cat, 1, func(id string) bool { return id == old.Identity }, open)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0]["identity"] != mid.Identity {
		t.Errorf("removed %v, want only the middle image", res.Removed)
	}
	if len(res.Unpublished) != 1 || res.Unpublished[0].Image != mid.Identity || res.Unpublished[0].ID != "img-"+mid.ShortID() {
		t.Errorf("unpublished %+v, want the middle image's copy", res.Unpublished)
	}
	if len(res.Kept) != 1 || res.Kept[0].Image != lost.Identity || !strings.Contains(res.Kept[0].Reason, `"gone" is no longer in the fleet`) {
		t.Errorf("kept %+v, want the image whose block is gone, with the reason", res.Kept)
	}
	for m, want := range map[*images.Manifest]bool{old: true, mid: false, newest: true} {
		if _, ok, _ := cloud.Published(t.Context(), m.Identity); ok != want {
			t.Errorf("copy of %s on the cloud: %v, want %v", m.ShortID(), ok, want)
		}
	}
	if !cat.Has(lost.Identity) || cat.Has(mid.Identity) || !cat.Has(old.Identity) {
		t.Error("the catalog does not hold what prune kept")
	}
	if refs, _ := cat.Published(lost.Identity); len(refs) != 1 {
		t.Errorf("the kept image lost its reference: %+v", refs)
	}
}

// cancelingPublisher cancels the publish after its first upload progress, as a ^C would.
type cancelingPublisher struct {
	*memory.Cloud
	cancel context.CancelFunc
}

func (p cancelingPublisher) Publish(ctx context.Context, src compute.PublishSource, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	return p.Cloud.Publish(ctx, src, func(e compute.PublishProgress) {
		progress(e)
		p.cancel()
	})
}

// An interrupted publish says that running it again resumes; one that never started does not.
func TestImagesPublishFailureHints(t *testing.T) {
	state := t.TempDir()
	m := seedRawImage(t, state, 300<<10, 0)
	cat := images.OpenCatalog(state)
	cloud := memory.NewCloud("mem-1")
	ctx, cancel := context.WithCancel(t.Context())
	a, _ := testApp(false)
	err := a.publishImage(ctx, cat, m, images.PublishTarget{Compute: "prod", Type: "memcloud", Publisher: cancelingPublisher{cloud, cancel}})
	var f *failure
	if !errors.As(err, &f) || f.code != exitFailure || !strings.Contains(f.hint, "run the same command again: the provider resumes") {
		t.Fatalf("interrupted publish: %#v, want a failure whose hint says a rerun resumes", err)
	}
	a, out := testApp(false)
	if err := a.publishImage(t.Context(), cat, m, images.PublishTarget{Compute: "prod", Type: "memcloud", Publisher: cloud}); err != nil {
		t.Fatal(err)
	}
	if n, publishes := cloud.Uploaded(); n != 300<<10 || publishes != 2 {
		t.Errorf("interrupted and rerun: %d bytes in %d publishes, want the disk once in 2\n%s", n, publishes, out)
	}

	noRaw := seedRawImage(t, state, 4096, time.Hour)
	if err := os.Remove(filepath.Join(cat.ImageDir(noRaw.Identity), "disk.raw")); err != nil {
		t.Fatal(err)
	}
	a, _ = testApp(false)
	err = a.publishImage(t.Context(), cat, noRaw, images.PublishTarget{Compute: "prod", Type: "memcloud", Publisher: cloud})
	if !errors.As(err, &f) || !strings.Contains(f.reason, "its raw disk") || f.hint != "" {
		t.Errorf("publish of an image whose disk is missing: %#v, want the reason and no resume hint", err)
	}
}

// drover images prune keeps an image whose published copy it cannot delete through the fleet, says
// why and exits 1; the reference stays for the next prune.
func TestImagesPruneKeepsWhatItCannotUnpublish(t *testing.T) {
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(fleetFile, []byte(qemuFleet), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	old := seedRawImage(t, state, 4096, time.Hour)
	seedRawImage(t, state, 4096, 0)
	cat := images.OpenCatalog(state)
	for _, tc := range []struct {
		fleet, block, want string
	}{
		{filepath.Join(dir, "missing.hcl"), "prod", `the copy on compute "prod" is deleted through the fleet file, which could not be read`},
		{fleetFile, "prod", `compute block "prod", which the copy was published on, is no longer in ` + fleetFile},
		{fleetFile, "lab", `compute "lab" (type qemu) cannot delete published images`},
	} {
		if err := cat.RecordPublished(old.Identity, images.PublishedRef{Compute: tc.block, Type: "aws", Region: "us-east-1", ID: "ami-1"}); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := drover(t, nil, "--fleet", tc.fleet, "--state", state, "images", "prune", "--keep", "1")
		if code != exitFailure || !strings.Contains(stdout, "kept web@"+old.ShortID()+": "+tc.want) || !strings.Contains(stderr, "1 image(s) kept") {
			t.Errorf("prune with the copy on %q (fleet %s): exit %d\n%s%s", tc.block, tc.fleet, code, stdout, stderr)
		}
		if !cat.Has(old.Identity) {
			t.Fatal("prune removed an image whose copy it could not delete")
		}
		if err := cat.ForgetPublished(old.Identity, images.PublishedRef{Compute: tc.block, Region: "us-east-1", ID: "ami-1"}); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := drover(t, nil, "--fleet", fleetFile, "--state", state, "--output", "json", "images", "prune", "--keep", "1")
	var res pruneResult
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || len(res.Removed) != 1 || len(res.Kept) != 0 {
		t.Errorf("prune without published copies: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
}
