package images_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/memory"
)

// rawImage adds an image with a raw disk to the catalog.
func rawImage(t *testing.T, c *images.Catalog, role string, disk []byte) *images.Manifest {
	t.Helper()
	sum := sha256.Sum256(append([]byte(role), disk...))
	identity := "sha256:" + hex.EncodeToString(sum[:])
	st, err := c.Stage(identity)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "disk.raw"), disk, 0o644); err != nil {
		t.Fatal(err)
	}
	diskSum := sha256.Sum256(disk)
	m := &images.Manifest{Identity: identity, Role: role, Arch: "amd64", Created: time.Now(), ArtifactSHA256: hex.EncodeToString(diskSum[:]),
		Artifacts: []images.Artifact{{Format: "raw", File: "disk.raw", Length: int64(len(disk)), SHA256: hex.EncodeToString(diskSum[:])}}}
	if err := st.Commit(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPublishToRecordsAndUploadsOnce(t *testing.T) {
	c := images.OpenCatalog(t.TempDir())
	disk := []byte(strings.Repeat("a raw disk\n", 20000))
	m := rawImage(t, c, "web", disk)
	cloud := memory.NewCloud("mem-1")
	to := images.PublishTarget{Compute: "prod", Type: "memory", Publisher: cloud}

	var last compute.PublishProgress
	res, err := c.PublishTo(t.Context(), m, to, func(p compute.PublishProgress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if res.Existing || res.Image.ID == "" || res.Ref.ID != res.Image.ID || res.Ref.Region != "mem-1" || res.Ref.Compute != "prod" || res.Ref.Type != "memory" {
		t.Fatalf("first PublishTo = %+v", res)
	}
	if last.Phase != compute.PhaseRegister {
		t.Errorf("last progress %+v, want the register phase", last)
	}
	if got, ok := cloud.Content(res.Image); !ok || string(got) != string(disk) {
		t.Fatalf("the cloud holds %d bytes, want the raw disk's %d", len(got), len(disk))
	}
	refs, err := c.Published(m.Identity)
	if err != nil || len(refs) != 1 || refs[0] != res.Ref {
		t.Fatalf("catalog records %+v, %v; want %+v", refs, err, res.Ref)
	}

	// Again, after the catalog lost its record: the provider's copy is found, nothing uploaded.
	if err := c.ForgetPublished(m.Identity, res.Ref); err != nil {
		t.Fatal(err)
	}
	before, _ := cloud.Uploaded()
	again, err := c.PublishTo(t.Context(), m, to, func(p compute.PublishProgress) { t.Errorf("progress on a second publish: %+v", p) })
	if err != nil || !again.Existing || again.Image != res.Image {
		t.Fatalf("second PublishTo = %+v, %v; want the existing copy", again, err)
	}
	if after, _ := cloud.Uploaded(); after != before {
		t.Errorf("second PublishTo uploaded %d bytes", after-before)
	}
	if refs, _ := c.Published(m.Identity); len(refs) != 1 {
		t.Errorf("the second PublishTo did not record the copy again: %+v", refs)
	}
}

func TestPublishToNeedsRawDisk(t *testing.T) {
	c := images.OpenCatalog(t.TempDir())
	m := rawImage(t, c, "web", []byte("disk"))
	m.Artifacts = []images.Artifact{{Format: "qcow2", File: "disk.qcow2"}}
	cloud := memory.NewCloud("mem-1")
	_, err := c.PublishTo(t.Context(), m, images.PublishTarget{Compute: "prod", Publisher: cloud}, nil)
	if err == nil || !strings.Contains(err.Error(), "no raw disk") {
		t.Fatalf("PublishTo of an image without a raw disk: %v", err)
	}
	if n, _ := cloud.Uploaded(); n != 0 {
		t.Errorf("uploaded %d bytes of an image without a raw disk", n)
	}
}
