package vultr

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
)

func TestVolumesContract(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{PendingPolls: 2})
	img := labSnapshot(t, cloud)
	computetest.RunVolumes(t, func(t *testing.T) computetest.VolumesFixture {
		p := labProvider(t, cloud, WithPageSize(2)) // small pages: listings follow the cursor
		return computetest.VolumesFixture{
			Provider: p,
			Volumes:  p,
			WriteMarker: func(_ context.Context, volume string, data []byte) error {
				if !cloud.WriteBlock(volume, data) {
					return fmt.Errorf("no block %s", volume)
				}
				return nil
			},
			ReadMarker: func(_ context.Context, volume string, n int) ([]byte, error) {
				b, ok := cloud.ReadBlock(volume, n)
				if !ok {
					return nil, fmt.Errorf("no block %s", volume)
				}
				return b, nil
			},
		}
	}, computetest.VolumesOptions{Image: img})
}

func TestBlockLabelRoundTrip(t *testing.T) {
	labels := map[string]string{"role": "db", "volume": "data", "odd key": "a=b&c #drover?d"}
	l := parseBlockLabel(blockLabel("db data #1", "r1/db/data", labels))
	if !l.ours || l.name != "db data #1" || l.token != "r1/db/data" || !maps.Equal(l.labels, labels) {
		t.Fatalf("round trip: %+v", l)
	}
	if l := parseBlockLabel("someone's block"); l.ours || l.name != "someone's block" {
		t.Fatalf("a label drover did not write: %+v", l)
	}
	long := strings.Repeat("x", 100)
	if l := parseBlockLabel(blockLabel("n", long, nil)); l.token != strings.TrimPrefix(tokenTag(long), tokenTagPrefix) || len(l.token) > maxToken {
		t.Fatalf("a long token is kept as its digest: %+v", l)
	}
}

// TestVolumeGuestPathIsMountID: the guest finds the block by its mount_id (the virtio serial).
func TestVolumeGuestPathIsMountID(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	p := labProvider(t, cloud)
	v, err := p.CreateVolume(t.Context(), compute.VolumeSpec{Token: "r1/db/data", Name: "db data", SizeGiB: 10})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := p.c.BlockStorage.Get(t.Context(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.MountID == "" || v.GuestPath != "/dev/disk/by-id/virtio-"+b.MountID {
		t.Fatalf("GuestPath %q, mount_id %q", v.GuestPath, b.MountID)
	}
}

// TestCreateVolumeAfterCrash: a block created by a call that died before the answer (here made
// through the API with drover's label) is found by its token, not created again; and a block
// with the same token made by a racing process is deleted, the oldest kept.
func TestCreateVolumeAfterCrash(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	p := labProvider(t, cloud)
	spec := compute.VolumeSpec{Token: "r1/db/data", Name: "db data", SizeGiB: 5, Labels: map[string]string{"role": "db"}}
	first, _, err := p.c.BlockStorage.Create(t.Context(), &govultr.BlockStorageCreate{Region: cloud.Region(), SizeGB: 5, Label: blockLabel(spec.Name, spec.Token, spec.Labels)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := labProvider(t, cloud).CreateVolume(t.Context(), spec)
	if err != nil || v.ID != first.ID {
		t.Fatalf("CreateVolume after a crash: %+v, %v; want %s", v, err, first.ID)
	}
	second, _, err := p.c.BlockStorage.Create(t.Context(), &govultr.BlockStorageCreate{Region: cloud.Region(), SizeGB: 5, Label: blockLabel(spec.Name, spec.Token, spec.Labels)})
	if err != nil {
		t.Fatal(err)
	}
	// The oldest wins; Vultr's date_created has whole seconds, so a tie goes to the lower ID.
	want := first.ID
	if first.DateCreated == second.DateCreated && second.ID < first.ID {
		want = second.ID
	}
	won, err := p.CreateVolume(t.Context(), spec)
	if err != nil || won.ID != want {
		t.Fatalf("CreateVolume with two blocks of the token: %+v, %v; want %s", won, err, want)
	}
	if got, err := p.Volumes(t.Context(), compute.Selector{"role": "db"}); err != nil || len(got) != 1 || got[0].ID != want {
		t.Fatalf("after the race: %+v, %v; want only %s", got, err, want)
	}
	if again, err := labProvider(t, cloud).CreateVolume(t.Context(), spec); err != nil || again.ID != want {
		t.Fatalf("CreateVolume after the race: %+v, %v; want %s", again, err, want)
	}
}

// TestVolumesPaginated: more blocks than a page, some not drover's, listed whole and filtered.
func TestVolumesPaginated(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	p := labProvider(t, cloud, WithPageSize(2))
	for i := range 5 {
		if _, err := p.CreateVolume(t.Context(), compute.VolumeSpec{Token: fmt.Sprint("t", i), Name: "v", SizeGiB: 1, Labels: map[string]string{"role": "db", "n": fmt.Sprint(i % 2)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.c.BlockStorage.Create(t.Context(), &govultr.BlockStorageCreate{Region: cloud.Region(), SizeGB: 1, Label: "someone else's"}); err != nil {
		t.Fatal(err)
	}
	all, err := p.Volumes(t.Context(), nil)
	if err != nil || len(all) != 5 {
		t.Fatalf("Volumes(nil) = %d volumes, %v; want 5", len(all), err)
	}
	odd, err := p.Volumes(t.Context(), compute.Selector{"n": "1"})
	if err != nil || len(odd) != 2 {
		t.Fatalf("Volumes(n=1) = %+v, %v; want 2", odd, err)
	}
	lists := 0
	for _, r := range cloud.Requests() {
		if r.Route == "GET /v2/blocks" {
			lists++
		}
	}
	if lists < 3*2+3 { // each Volumes call reads 3 pages of 6 blocks, each CreateVolume more
		t.Errorf("%d list requests: the listings did not follow the cursor", lists)
	}
}

// TestAttachVolumeOtherRegion: a block of another region is refused (by the provider before any
// attach request, and by the fake's API when asked anyway), and stays attached nowhere.
func TestAttachVolumeOtherRegion(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	p, in, v := instanceAndVolume(t, cloud)
	if _, err := p.waitBlock(t.Context(), v.ID, "active", func(b *govultr.BlockStorage) bool { return b.Status == "active" }); err != nil {
		t.Fatal(err)
	}
	cloud.PlaceBlock(v.ID, "ams")
	_, err := p.AttachVolume(t.Context(), v.ID, in.ID)
	if err == nil || errors.Is(err, compute.ErrVolumeInUse) || !strings.Contains(err.Error(), "ams") {
		t.Fatalf("AttachVolume across regions: %v, want a refusal naming the regions", err)
	}
	for _, r := range cloud.Requests() {
		if r.Route == "POST /v2/blocks/{id}/attach" {
			t.Fatalf("the provider asked Vultr to attach across regions")
		}
	}
	err = p.c.BlockStorage.Attach(t.Context(), v.ID, &govultr.BlockStorageAttach{InstanceID: in.ID})
	if status, _ := vultrapi.Error(err); status != 400 {
		t.Fatalf("the fake's attach across regions: %v, want a 400", err)
	}
	if h := cloud.BlockHolder(v.ID); h != "" {
		t.Fatalf("the block is on %q after refused attaches", h)
	}
}

func TestAttachVolumeRetriesRateLimit(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{PendingPolls: 2})
	p, in, v := instanceAndVolume(t, cloud)
	cloud.Fail(vultrlab.RateLimited("POST /v2/blocks/{id}/attach", 1, 0))
	cloud.Fail(vultrlab.ServerError("GET /v2/blocks/{id}", 2))
	got, err := p.AttachVolume(t.Context(), v.ID, in.ID)
	if err != nil || got.AttachedTo != in.ID {
		t.Fatalf("AttachVolume through a 429 and two 500s: %+v, %v", got, err)
	}
	if h := cloud.BlockHolder(v.ID); h != in.ID {
		t.Fatalf("the fake has the block on %q, want %s", h, in.ID)
	}
}

// instanceAndVolume launches instance db-1 and creates a 1 GB volume on cloud, for the attach tests.
func instanceAndVolume(t *testing.T, cloud *vultrlab.Cloud) (*Provider, compute.Instance, compute.Volume) {
	t.Helper()
	img := labSnapshot(t, cloud)
	p := labProvider(t, cloud)
	in, err := p.Launch(t.Context(), compute.Spec{Token: "t1", Name: "db-1", Image: img})
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.CreateVolume(t.Context(), compute.VolumeSpec{Token: "v1", Name: "data", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p, in, v
}
