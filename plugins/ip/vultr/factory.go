package vultr

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
)

// Factory is the vultr ip type, a reserved IP moved between the instances of a vultr compute
// block (detached from the holder, then attached to the new one).
func Factory() ip.Factory {
	return ip.Factory{
		Type:      "vultr",
		Summary:   "a Vultr reserved IP",
		Computes:  []string{"vultr"},
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, _ config.Env, on compute.Provider) (ip.Provider, error) {
			c, err := config.As[Config]("vultr", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c, on)
		},
	}
}
