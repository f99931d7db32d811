package digitalocean_test

import (
	"os"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/compute/digitalocean"
	"github.com/drover-dev/drover/plugins/config"
)

// liveProvider opens the provider against the real DigitalOcean API, or skips: it needs
// DIGITALOCEAN_TOKEN, DROVER_TEST_DO_REGION and, for publishing, DROVER_TEST_DO_SPACES_BUCKET with
// SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY. Everything the tests make is deleted by them
// (the drover-gone-* tags of terminated tokens stay: they are free and hold nothing).
func liveProvider(t *testing.T) *digitalocean.Provider {
	t.Helper()
	region := os.Getenv("DROVER_TEST_DO_REGION")
	if region == "" || os.Getenv("DIGITALOCEAN_TOKEN") == "" {
		t.Skip("set DIGITALOCEAN_TOKEN and DROVER_TEST_DO_REGION to run against real DigitalOcean")
	}
	cfg, err := digitalocean.NewDefaultConfig(config.OS())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Region = region
	cfg.SpacesBucket = os.Getenv("DROVER_TEST_DO_SPACES_BUCKET")
	if cfg.SpacesBucket == "" {
		cfg.SpacesBucket = "unset-bucket"
	}
	if s := os.Getenv("DROVER_TEST_DO_SIZE"); s != "" {
		cfg.Size = s
	}
	p, err := digitalocean.New(cfg, digitalocean.WithPollInterval(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLivePublisher uploads small disks to Spaces, imports them as custom images and deletes both.
func TestLivePublisher(t *testing.T) {
	if os.Getenv("DROVER_TEST_DO_SPACES_BUCKET") == "" {
		t.Skip("set DROVER_TEST_DO_SPACES_BUCKET (and SPACES_ACCESS_KEY_ID, SPACES_SECRET_ACCESS_KEY) to publish for real")
	}
	p := liveProvider(t)
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		return computetest.PublisherFixture{Publisher: p}
	}, computetest.PublisherOptions{Timeout: 30 * time.Minute, Concurrency: 2})
}

// TestLiveCompute launches droplets of DROVER_TEST_DO_IMAGE (the ID of any custom or snapshot
// image of the region: the suite does not need it to boot anything of drover's) and deletes them.
func TestLiveCompute(t *testing.T) {
	p := liveProvider(t)
	img := os.Getenv("DROVER_TEST_DO_IMAGE")
	if img == "" {
		t.Skip("set DROVER_TEST_DO_IMAGE to an image ID of DROVER_TEST_DO_REGION to launch real droplets")
	}
	computetest.Run(t, func(t *testing.T) compute.Provider { return p }, computetest.Options{
		Image:       compute.Image{Identity: "live-test", Published: compute.PublishedImage{ID: img, Region: p.Region()}},
		Timeout:     10 * time.Minute,
		Concurrency: 2,
		LateCreates: true,
	})
}
