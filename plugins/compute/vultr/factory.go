package vultr

import (
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the vultr compute type. Its config decodes and New makes a working provider, but
// the block has no Open yet: instances boot from a published snapshot, and publishing (upload to
// Vultr Object Storage, snapshot create-from-URL) is not built, so drover validate refuses a vultr
// block until it is.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "vultr",
		Summary:   "Vultr cloud compute",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
	}
}
