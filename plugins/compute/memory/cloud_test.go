package memory_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/compute/memory"
)

func cloudFixture(t *testing.T) computetest.PublisherFixture {
	c := memory.NewCloud("mem-1")
	return computetest.PublisherFixture{
		Publisher: c,
		Uploaded:  func() int64 { n, _ := c.Uploaded(); return n },
		Content: func(_ context.Context, ref compute.PublishedImage) ([]byte, error) {
			b, ok := c.Content(ref)
			if !ok {
				return nil, errors.New("no such copy")
			}
			return b, nil
		},
	}
}

func TestCloudPublisherContract(t *testing.T) {
	computetest.RunPublisher(t, cloudFixture, computetest.PublisherOptions{Parallel: true})
}

// testDisk writes a raw disk of n bytes and returns its source.
func testDisk(t *testing.T, n int) compute.PublishSource {
	t.Helper()
	data := []byte(strings.Repeat("drover!\n", n/8))
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return compute.PublishSource{Identity: "sha256:" + hex.EncodeToString(sum[:]), Role: "web", Arch: "amd64",
		Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// The compute contract passes on a cloud, launching a published image.
func TestCloudContract(t *testing.T) {
	src := testDisk(t, 4096)
	ref, err := memory.NewCloud("mem-1").Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := compute.Image{Identity: src.Identity, Published: ref}
	computetest.Run(t, func(t *testing.T) compute.Provider {
		c := memory.NewCloud("mem-1")
		if got, err := c.Publish(t.Context(), src, nil); err != nil || got.ID != ref.ID {
			t.Fatalf("Publish: %+v, %v; want %s", got, err, ref.ID)
		}
		return c
	}, computetest.Options{Image: img, Parallel: true})
}

func TestCloudLaunchesOnlyPublished(t *testing.T) {
	c := memory.NewCloud("mem-1")
	src := testDisk(t, 4096)
	spec := compute.Spec{Token: "t1", Image: compute.Image{Identity: src.Identity, Path: src.Path}}
	if _, err := c.Launch(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "no published copy") {
		t.Fatalf("Launch of a local file: %v, want a refusal naming the missing copy", err)
	}
	ref, err := c.Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec.Image.Published = compute.PublishedImage{Identity: src.Identity, ID: "img-elsewhere"}
	if _, err := c.Launch(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Launch of a copy the cloud lacks: %v, want a refusal", err)
	}
	spec.Image.Published = ref
	in, err := c.Launch(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.LaunchedImage(in.ID); !ok || got.Published.ID != ref.ID {
		t.Errorf("LaunchedImage = %+v, %v; want the copy %s", got, ok, ref.ID)
	}
	if ins, _ := c.Instances(t.Context(), nil); len(ins) != 1 {
		t.Errorf("instances after one good launch and two refusals: %d", len(ins))
	}
}

// A second Publish of an image uploads nothing; an interrupted one is resumed
// where it stopped, so the disk is sent exactly once in all.
func TestCloudPublishResumesAndUploadsOnce(t *testing.T) {
	c := memory.NewCloud("mem-1")
	c.ChunkSize = 1024
	src := testDisk(t, 10*1024)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.Publish(ctx, src, func(p compute.PublishProgress) {
		if p.Done >= 3*1024 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || c.Leftovers() != 1 {
		t.Fatalf("interrupted Publish: %v, %d leftovers; want context.Canceled and the partial upload kept", err, c.Leftovers())
	}
	var phases []string
	ref, err := c.Publish(t.Context(), src, func(p compute.PublishProgress) {
		if len(phases) == 0 && p.Done != 4*1024 {
			t.Errorf("resumed upload starts at %d bytes, want 4096 (where it stopped, plus one chunk)", p.Done)
		}
		phases = append(phases, p.Phase)
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes, n := c.Uploaded(); bytes != src.Size || n != 2 || c.Leftovers() != 0 {
		t.Errorf("uploaded %d bytes in %d publishes, %d leftovers; want %d in 2, none left", bytes, n, c.Leftovers(), src.Size)
	}
	again, err := c.Publish(t.Context(), src, func(p compute.PublishProgress) { t.Errorf("progress on a second Publish: %+v", p) })
	if err != nil || again != ref {
		t.Fatalf("second Publish: %+v, %v; want %+v", again, err, ref)
	}
	if bytes, n := c.Uploaded(); bytes != src.Size || n != 2 {
		t.Errorf("after the second Publish: %d bytes in %d publishes; want it to upload nothing", bytes, n)
	}
	if err := c.Unpublish(t.Context(), compute.PublishedImage{Identity: ref.Identity, ID: ref.ID, Region: "mem-2"}); err == nil {
		t.Error("Unpublish of another region's copy succeeded")
	}
}

func TestCloudChecksumMismatch(t *testing.T) {
	c := memory.NewCloud("mem-1")
	src := testDisk(t, 4096)
	src.SHA256 = strings.Repeat("0", 64)
	if _, err := c.Publish(t.Context(), src, nil); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("Publish with a wrong checksum: %v", err)
	}
	if _, ok, _ := c.Published(t.Context(), src.Identity); ok || c.Leftovers() != 0 {
		t.Errorf("a copy with the wrong checksum was kept")
	}
}
