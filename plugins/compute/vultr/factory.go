package vultr

import (
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the vultr compute type. Its config decodes, but it cannot launch instances yet (no
// Open): drover validate refuses a vultr block until it can.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "vultr",
		Summary:   "Vultr cloud compute",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
	}
}
