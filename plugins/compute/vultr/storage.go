package vultr

import (
	"context"
	"errors"
	"fmt"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/internal/objstore"
)

// Factory is the vultr compute type: Vultr cloud compute instances, booted from snapshots made
// from a URL of the raw disk uploaded to Vultr Object Storage.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "vultr",
		Summary:   "Vultr cloud compute",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, _ config.Env) (compute.Provider, error) {
			c, err := config.As[Config]("vultr", cfg)
			if err != nil {
				return nil, err
			}
			store, err := openStore(c)
			if err != nil {
				return nil, err
			}
			return New(c, WithObjectStore(store))
		},
	}
}

// openStore is the block's Object Storage bucket.
func openStore(c *Config) (*objstore.Store, error) {
	if c.StorageEndpoint == "" || c.Bucket == "" {
		return nil, errors.New("vultr: no object storage: set storage_endpoint and bucket, where images are uploaded for Vultr to fetch")
	}
	if c.StorageKey == "" || c.StorageSecret == "" {
		return nil, errors.New("vultr: no object storage keys: set VULTR_OBJECT_STORAGE_ACCESS_KEY and VULTR_OBJECT_STORAGE_SECRET_KEY (or their _FILE forms)")
	}
	s, err := objstore.New(objstore.Config{Endpoint: c.StorageEndpoint, Bucket: c.Bucket,
		AccessKeyID: c.StorageKey, SecretAccessKey: c.StorageSecret, UsePathStyle: c.StoragePathStyle})
	if err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	return s, nil
}
