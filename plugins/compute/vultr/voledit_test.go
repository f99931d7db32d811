package vultr

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/compute"
)

// TestVolumeLabelsAndUserData: SetVolumeLabels rewrites the block's label with its name and token
// kept (CreateVolume with the token still finds it, the old labels no longer do); EditUserData is
// refused while the instance runs, and on a halted one reads Vultr's user-data and writes the edit
// back, leaving the instance's tags (drover's token and labels) as they were.
func TestVolumeLabelsAndUserData(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	p, in, _ := instanceAndVolume(t, cloud)
	ctx := t.Context()
	spec := compute.VolumeSpec{Token: "db/pgdata", Name: "db-pgdata", SizeGiB: 1, Labels: map[string]string{"role": "db", "volume": "pgdata"}}
	v, err := p.CreateVolume(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	aside := map[string]string{"role": "db", "replaced-volume": "pgdata"}
	for range 2 {
		got, err := p.SetVolumeLabels(ctx, v.ID, aside)
		if err != nil || !maps.Equal(got.Labels, aside) || got.Name != "db-pgdata" || got.GuestPath != v.GuestPath {
			t.Fatalf("SetVolumeLabels = %+v, %v; want labels %v, name and guest path kept", got, err, aside)
		}
	}
	if got, _ := p.Volumes(ctx, compute.Selector{"volume": "pgdata"}); len(got) != 0 {
		t.Errorf("the old labels still find %+v", got)
	}
	if again, err := p.CreateVolume(ctx, spec); err != nil || again.ID != v.ID {
		t.Errorf("CreateVolume with the token after a relabel: %+v, %v; want %s", again, err, v.ID)
	}

	tagsOf := func() (tags []string, ud string) {
		for _, i := range cloud.Instances() {
			if i.ID == in.ID {
				return i.Tags, string(i.UserData)
			}
		}
		t.Fatalf("no instance %s in the fake", in.ID)
		return nil, ""
	}
	tags, _ := tagsOf()
	edit := func(b []byte) ([]byte, error) { return append(b, "+edited"...), nil }
	if err := p.EditUserData(ctx, in.ID, edit); !errors.Is(err, compute.ErrInstanceRunning) {
		t.Fatalf("EditUserData of a running instance: %v, want ErrInstanceRunning", err)
	}
	if err := p.Stop(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"+edited", "+edited+edited"} {
		if err := p.EditUserData(ctx, in.ID, edit); err != nil {
			t.Fatal(err)
		}
		if gotTags, ud := tagsOf(); ud != want || !slices.Equal(gotTags, tags) {
			t.Fatalf("after EditUserData: user-data %q, tags %v; want %q and the tags %v kept", ud, gotTags, want, tags)
		}
	}
	if err := p.EditUserData(ctx, "00000000-0000-0000-0000-000000000000", edit); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("EditUserData of an unknown instance: %v, want ErrNotFound", err)
	}
}
