package digitalocean_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
)

func TestVolumesContract(t *testing.T) {
	c := dolab.New(t, dolab.Options{ActionPolls: 1, MaxPerPage: 2})
	img := importImage(t, c, newProvider(t, c))
	computetest.RunVolumes(t, func(t *testing.T) computetest.VolumesFixture {
		p := newProvider(t, c)
		return computetest.VolumesFixture{
			Provider: p,
			Volumes:  p,
			WriteMarker: func(_ context.Context, volume string, data []byte) error {
				if !c.WriteVolume(volume, data) {
					return fmt.Errorf("no volume %s", volume)
				}
				return nil
			},
			ReadMarker: func(_ context.Context, volume string, n int) ([]byte, error) {
				b, ok := c.ReadVolume(volume, n)
				if !ok {
					return nil, fmt.Errorf("no volume %s", volume)
				}
				return b, nil
			},
		}
	}, computetest.VolumesOptions{Image: img})
}

// TestVolumeNamedByToken: the volume is named after its token (unique in a region, so a create
// is idempotent across processes), found by DigitalOcean's by-id path.
func TestVolumeNamedByToken(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	v, err := p.CreateVolume(t.Context(), compute.VolumeSpec{Token: "r1/db/data", Name: "db data", SizeGiB: 10, Labels: map[string]string{"role": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := newProvider(t, c).CreateVolume(t.Context(), compute.VolumeSpec{Token: "r1/db/data", Name: "db data", SizeGiB: 10})
	if err != nil || again.ID != v.ID {
		t.Fatalf("CreateVolume of the token from another provider: %+v, %v; want %s", again, err, v.ID)
	}
	if v.Name != "db data" || len(v.GuestPath) < len("/dev/disk/by-id/scsi-0DO_Volume_drover-v-") || v.GuestPath[:len("/dev/disk/by-id/scsi-0DO_Volume_drover-v-")] != "/dev/disk/by-id/scsi-0DO_Volume_drover-v-" {
		t.Errorf("volume %+v", v)
	}
}
