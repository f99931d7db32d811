package digitalocean_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
)

func TestPublisherContract(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	spaces := s3lab.New(t, s3lab.Options{})
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		return computetest.PublisherFixture{
			Publisher: newProviderSpaces(t, c, spaces),
			Uploaded:  c.BytesDownloaded,
			Content: func(_ context.Context, ref compute.PublishedImage) ([]byte, error) {
				id, err := strconv.Atoi(ref.ID)
				if err != nil {
					return nil, err
				}
				return c.ImageContent(id)
			},
		}
	}, computetest.PublisherOptions{Size: 12 << 20})
	// Every subtest unpublished what it made: no image, no object, no unfinished upload is left.
	if imgs := c.Images(); len(imgs) != 0 {
		t.Errorf("images left: %+v", imgs)
	}
	if objs, ups := spaces.Objects("drover-images"), spaces.Uploads("drover-images"); len(objs) != 0 || len(ups) != 0 {
		t.Errorf("left in Spaces: objects %+v, unfinished uploads %+v", objs, ups)
	}
}

// TestPublishThenLaunch: a published image is what droplets launch from, the object is gone once
// imported, and the upload is the compressed disk.
func TestPublishThenLaunch(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	spaces := s3lab.New(t, s3lab.Options{})
	p := newProviderSpaces(t, c, spaces)
	raw := make([]byte, 64<<20)
	copy(raw, "a disk with little data")
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	src := compute.PublishSource{Identity: "sha256:" + strings.Repeat("ab", 32), Role: "web", Arch: "amd64", Path: path, Size: int64(len(raw))}
	var sent int64
	ref, err := p.Publish(t.Context(), src, func(pp compute.PublishProgress) {
		if pp.Phase == compute.PhaseUpload {
			sent = pp.Done
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent == 0 || sent > 1<<20 {
		t.Errorf("uploaded %d bytes for a 64 MiB disk holding 23 bytes: want it compressed", sent)
	}
	if objs := spaces.Objects("drover-images"); len(objs) != 0 {
		t.Errorf("objects left after the import: %+v", objs)
	}
	imgs := c.Images()
	if len(imgs) != 1 || imgs[0].Status != "available" || !strings.HasPrefix(imgs[0].Name, "drover-web-") || !strings.HasSuffix(imgs[0].Name, "-"+c.Region()) {
		t.Fatalf("images %+v", imgs)
	}
	in, err := p.Launch(t.Context(), compute.Spec{Token: "t1", Name: "web", Image: compute.Image{Identity: src.Identity, Published: ref}})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Droplets(); len(d) != 1 || strconv.Itoa(d[0].Image) != ref.ID || strconv.Itoa(d[0].ID) != in.ID {
		t.Errorf("droplets %+v, want one from image %s", d, ref.ID)
	}
}

// TestPublishImportFails: an import DigitalOcean refuses is reported with its reason, and the
// next Publish starts over.
func TestPublishImportFails(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	spaces := s3lab.New(t, s3lab.Options{})
	p := newProviderSpaces(t, c, spaces)
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, make([]byte, 1000), 0o644); err != nil { // not whole sectors
		t.Fatal(err)
	}
	src := compute.PublishSource{Identity: "sha256:" + strings.Repeat("cd", 32), Role: "web", Arch: "amd64", Path: path, Size: 1000}
	_, err := p.Publish(t.Context(), src, nil)
	if err == nil || !strings.Contains(err.Error(), "could not import") || !strings.Contains(err.Error(), "not a disk") {
		t.Fatalf("Publish of a disk DigitalOcean refuses: %v, want its reason", err)
	}
	if _, ok, err := p.Published(t.Context(), src.Identity); ok || err != nil {
		t.Errorf("Published after a failed import: %v, %v", ok, err)
	}
	if err := p.Unpublish(t.Context(), compute.PublishedImage{Identity: src.Identity}); err != nil {
		t.Fatal(err)
	}
	if imgs, objs := c.Images(), spaces.Objects("drover-images"); len(imgs) != 0 || len(objs) != 0 {
		t.Errorf("after Unpublish: images %+v, objects %+v", imgs, objs)
	}
}
