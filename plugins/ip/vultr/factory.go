package vultr

import (
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
)

// Factory is the vultr ip type, a reserved IP moved between the instances of a vultr compute
// block. New makes a working provider, but the block has no Open yet: the vultr compute block
// cannot be opened until publishing is built, so drover validate refuses both until then.
func Factory() ip.Factory {
	return ip.Factory{
		Type:      "vultr",
		Summary:   "a Vultr reserved IP",
		Computes:  []string{"vultr"},
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
	}
}
