package rollout_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	computemem "github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/rollout"
)

// cloudLab is the lab on a compute that boots only published images (memory.Cloud), with the lab's
// server and console per instance.
type cloudLab struct {
	*labCompute
	cloud *computemem.Cloud
}

var _ compute.Publisher = (*cloudLab)(nil)

// onCloud moves a lab onto a memory cloud, in region mem-1, and declares its compute block.
func onCloud(l *lab) *cloudLab {
	cloud := computemem.NewCloud("mem-1")
	cloud.ChunkSize = 16 << 10
	l.comp.Provider = cloud.Provider
	l.fleet.Compute = append(l.fleet.Compute, &fleet.Provider{Kind: fleet.KindCompute, Type: "memcloud", Name: "lab"})
	return &cloudLab{labCompute: l.comp, cloud: cloud}
}

func (c *cloudLab) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	in, err := c.cloud.Launch(ctx, spec)
	if err != nil {
		return in, err
	}
	if err := c.serve(in, spec.Image.Identity); err != nil {
		return in, err
	}
	return c.decorate(in), nil
}

func (c *cloudLab) Publish(ctx context.Context, src compute.PublishSource, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	return c.cloud.Publish(ctx, src, progress)
}

func (c *cloudLab) Published(ctx context.Context, identity string) (compute.PublishedImage, bool, error) {
	return c.cloud.Published(ctx, identity)
}

func (c *cloudLab) Unpublish(ctx context.Context, ref compute.PublishedImage) error {
	return c.cloud.Unpublish(ctx, ref)
}

func (c *cloudLab) use(o *rollout.Options) {
	o.Compute = func(context.Context, string) (compute.Provider, error) { return c, nil }
}

// buildRaw adds a new image of role with a raw disk of n bytes to the catalog.
func (l *lab) buildRaw(role string, n int) string {
	l.t.Helper()
	l.mu.Lock()
	l.built[role]++
	seq := l.built[role]
	l.mu.Unlock()
	line := fmt.Sprintf("%s image %d\n", role, seq)
	disk := []byte(strings.Repeat(line, n/len(line)+1))[:n]
	sum := sha256.Sum256(disk)
	id := "sha256:" + hex.EncodeToString(sum[:])
	st, err := l.catalog.Stage(id)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "disk.raw"), disk, 0o644); err != nil {
		l.t.Fatal(err)
	}
	m := &images.Manifest{Identity: id, Role: role, Arch: "amd64", Created: time.Date(2026, 11, 1, 0, seq, 0, 0, time.UTC),
		ArtifactSHA256: hex.EncodeToString(sum[:]),
		Artifacts:      []images.Artifact{{Format: "raw", File: "disk.raw", Length: int64(n), SHA256: hex.EncodeToString(sum[:])}}}
	if err := st.Commit(m); err != nil {
		l.t.Fatal(err)
	}
	return id
}

func (l *lab) steps(step string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if e.Kind == "step" && e.Step == step {
			out = append(out, e.Message)
		}
	}
	return out
}

// A rollout on a compute that boots its own copy publishes the image first, records the copy in the
// catalog and launches from it; a second rollout of the same image uploads nothing.
func TestRolloutPublishesFirstAndOnce(t *testing.T) {
	l := newLab(t, webRole())
	cl := onCloud(l)
	const size = 100 << 10
	img := l.buildRaw("web", size)
	c := l.controller(cl.use)

	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	refs, err := l.catalog.Published(img)
	if err != nil || len(refs) != 1 {
		t.Fatalf("catalog records %+v, %v; want one published copy", refs, err)
	}
	ref := refs[0]
	if ref.Compute != "lab" || ref.Type != "memcloud" || ref.Region != "mem-1" || ref.ID == "" {
		t.Errorf("recorded reference %+v, want compute lab, type memcloud, region mem-1 and an ID", ref)
	}
	if bytes, publishes := cl.cloud.Uploaded(); bytes != size || publishes != 1 {
		t.Errorf("first rollout uploaded %d bytes in %d publishes, want %d in 1", bytes, publishes, size)
	}
	green := l.running("web")[img]
	if len(green) != 2 {
		t.Fatalf("%d green instances of the image, want 2", len(green))
	}
	for _, in := range green {
		if got, _ := cl.cloud.LaunchedImage(in.ID); got.Published.ID != ref.ID || got.Identity != img {
			t.Errorf("instance %s launched from %+v, want the published copy %s", in.ID, got, ref.ID)
		}
	}
	steps := l.steps("publish")
	if len(steps) < 3 || !strings.HasPrefix(steps[0], "upload: ") || !strings.Contains(steps[len(steps)-1], "published image "+images.ShortID(img)+" on lab as "+ref.ID+" in mem-1") {
		t.Errorf("publish steps %q, want upload progress, then where the copy is", steps)
	}
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)

	// The same image again: found on the cloud, nothing uploaded.
	l.resetEvents()
	rec, err = c.Start(t.Context(), "web", rollout.StartOptions{Force: true})
	mustRecord(t, rec, err, rollout.Ready)
	if bytes, publishes := cl.cloud.Uploaded(); bytes != size || publishes != 1 {
		t.Errorf("after the second rollout: %d bytes in %d publishes, want it to upload nothing", bytes, publishes)
	}
	if steps := l.steps("publish"); len(steps) != 1 || !strings.Contains(steps[0], "is published on lab as "+ref.ID) {
		t.Errorf("second rollout's publish steps %q, want one saying the copy is there", steps)
	}
	l.logEvents(t)
}

// A rollout killed while it publishes resumes the upload when run again: the disk is sent once in all.
func TestRolloutResumesInterruptedPublish(t *testing.T) {
	l := newLab(t, webRole())
	cl := onCloud(l)
	const size = 100 << 10
	img := l.buildRaw("web", size)
	c := l.controller(cl.use)

	ctx, kill := context.WithCancel(t.Context())
	l.onEvent = func(e rollout.Event) {
		if e.Step == "publish" && strings.HasPrefix(e.Message, "upload: ") {
			kill()
		}
	}
	if _, err := c.Start(ctx, "web", rollout.StartOptions{}); err == nil {
		t.Fatal("a rollout killed while publishing succeeded")
	}
	l.onEvent = nil
	if bytes, _ := cl.cloud.Uploaded(); bytes == 0 || bytes >= size || cl.cloud.Leftovers() != 1 {
		t.Fatalf("after the kill: %d of %d bytes uploaded, %d leftovers; want a partial upload", bytes, size, cl.cloud.Leftovers())
	}
	if refs, _ := l.catalog.Published(img); len(refs) != 0 {
		t.Fatalf("an interrupted publish was recorded: %+v", refs)
	}
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if bytes, publishes := cl.cloud.Uploaded(); bytes != size || publishes != 2 || cl.cloud.Leftovers() != 0 {
		t.Errorf("after the rerun: %d bytes in %d publishes, %d leftovers; want %d in 2 (resumed), none left", bytes, publishes, cl.cloud.Leftovers(), size)
	}
	if refs, _ := l.catalog.Published(img); len(refs) != 1 {
		t.Errorf("after the rerun the catalog records %+v, want the copy", refs)
	}
}

// On a compute that boots the catalog's file (the lab's qemu, here the plain memory fake), nothing is
// published and instances get the local disk.
func TestRolloutOnLocalComputePublishesNothing(t *testing.T) {
	l := newLab(t, webRole())
	img := l.buildRaw("web", 4096)
	var launched []compute.Image
	c := l.controller(func(o *rollout.Options) {
		o.Compute = func(context.Context, string) (compute.Provider, error) {
			return &recordingCompute{labCompute: l.comp, images: &launched}, nil
		}
	})
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if len(launched) != 2 {
		t.Fatalf("%d launches, want 2", len(launched))
	}
	for _, im := range launched {
		if !im.Published.IsZero() || im.Path != filepath.Join(l.catalog.ImageDir(img), "disk.raw") {
			t.Errorf("launched %+v, want the local raw disk and no published copy", im)
		}
	}
	if refs, _ := l.catalog.Published(img); len(refs) != 0 || len(l.steps("publish")) != 0 {
		t.Errorf("a local compute published: %+v %q", refs, l.steps("publish"))
	}
}

type recordingCompute struct {
	*labCompute
	images *[]compute.Image
}

func (c *recordingCompute) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	c.lab.mu.Lock()
	*c.images = append(*c.images, spec.Image)
	c.lab.mu.Unlock()
	return c.labCompute.Launch(ctx, spec)
}
