package vultr

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
)

// TestPublisherOnObjectStorage runs the publisher suite with the block's own object store
// (objstore, aws-sdk-go-v2's S3 client) against the S3 lab: multipart uploads of the raw disk,
// presigned URLs the fake Vultr fetches with a plain GET, the object deleted once the snapshot is
// made, nothing left in the bucket.
func TestPublisherOnObjectStorage(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	store := s3lab.New(t, s3lab.Options{MinPartSize: 1 << 20})
	newProvider := func(t *testing.T) *Provider {
		cfg := &Config{Region: cloud.Region(), Plan: "vc2-1c-1gb", APIKey: cloud.APIKey(), APIURL: cloud.URL(),
			StorageEndpoint: store.URL, Bucket: "drover-images", StorageKey: store.AccessKeyID, StorageSecret: store.SecretAccessKey, StoragePathStyle: true}
		s, err := openStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return labProvider(t, cloud, WithObjectStore(s))
	}
	computetest.RunPublisher(t, func(t *testing.T) computetest.PublisherFixture {
		return computetest.PublisherFixture{
			Publisher: newProvider(t),
			Content: func(ctx context.Context, ref compute.PublishedImage) ([]byte, error) {
				for _, s := range cloud.Snapshots() {
					if s.ID == ref.ID {
						return os.ReadFile(s.Path)
					}
				}
				return nil, errors.New("no such snapshot in the fake")
			},
		}
	}, computetest.PublisherOptions{Size: 3 << 20})
	if left := store.Leftovers(); len(left) != 0 {
		t.Errorf("the bucket holds %v after the suite", left)
	}
	if n := store.Count("GetObject"); n == 0 {
		t.Error("the fake Vultr fetched nothing from the store: the snapshots were not made from its presigned URLs")
	}
}

func TestOpenStoreNeedsBucketAndKeys(t *testing.T) {
	for name, c := range map[string]Config{
		"no bucket": {StorageEndpoint: "https://ewr1.vultrobjects.com", StorageKey: "k", StorageSecret: "s"},
		"no keys":   {StorageEndpoint: "https://ewr1.vultrobjects.com", Bucket: "drover-images"},
	} {
		if _, err := openStore(&c); err == nil {
			t.Errorf("%s: openStore = nil error", name)
		}
	}
}
