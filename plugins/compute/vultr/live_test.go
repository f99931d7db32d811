package vultr

import (
	"os"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/config"
)

// liveConfig is the block of a test against real Vultr, or a skip: it needs VULTR_API_KEY and
// DROVER_TEST_VULTR_REGION; DROVER_TEST_VULTR_PLAN overrides the plan. Everything the tests make
// is deleted by them.
func liveConfig(t *testing.T) *Config {
	t.Helper()
	region := os.Getenv("DROVER_TEST_VULTR_REGION")
	if region == "" || os.Getenv("VULTR_API_KEY") == "" {
		t.Skip("set VULTR_API_KEY and DROVER_TEST_VULTR_REGION to run against real Vultr")
	}
	cfg, err := NewDefaultConfig(config.OS())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Region = region
	if plan := os.Getenv("DROVER_TEST_VULTR_PLAN"); plan != "" {
		cfg.Plan = plan
	}
	return cfg
}

// TestLiveCompute launches instances of the snapshot DROVER_TEST_VULTR_SNAPSHOT (any snapshot of
// the account: the suite does not need it to boot anything of drover's) and destroys them.
func TestLiveCompute(t *testing.T) {
	cfg := liveConfig(t)
	snap := os.Getenv("DROVER_TEST_VULTR_SNAPSHOT")
	if snap == "" {
		t.Skip("set DROVER_TEST_VULTR_SNAPSHOT to a snapshot ID of the account to launch real instances")
	}
	p, err := New(cfg, WithPollInterval(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	computetest.Run(t, func(t *testing.T) compute.Provider { return p }, computetest.Options{
		Image:       compute.Image{Identity: "live-test", Published: compute.PublishedImage{ID: snap}},
		Timeout:     15 * time.Minute,
		Concurrency: 2,
		LateCreates: true,
	})
}

// TestLivePublisher publishes small disks as snapshots through the Object Storage bucket
// DROVER_TEST_VULTR_BUCKET at DROVER_TEST_VULTR_STORAGE_ENDPOINT (keys in
// VULTR_OBJECT_STORAGE_ACCESS_KEY and VULTR_OBJECT_STORAGE_SECRET_KEY) and deletes them. Vultr
// may refuse the suite's random disks (no partition table): the suite then reports its reason.
func TestLivePublisher(t *testing.T) {
	cfg := liveConfig(t)
	cfg.StorageEndpoint, cfg.Bucket = os.Getenv("DROVER_TEST_VULTR_STORAGE_ENDPOINT"), os.Getenv("DROVER_TEST_VULTR_BUCKET")
	if cfg.StorageEndpoint == "" || cfg.Bucket == "" {
		t.Skip("set DROVER_TEST_VULTR_STORAGE_ENDPOINT and DROVER_TEST_VULTR_BUCKET to publish to real Vultr")
	}
	store, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, WithObjectStore(store), WithPollInterval(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		return computetest.PublisherFixture{Publisher: p}
	}, computetest.PublisherOptions{Timeout: 30 * time.Minute, Concurrency: 2})
}
