package digitalocean

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
)

// Factory is the digitalocean ip type, a reserved IP moved between the droplets of a digitalocean
// compute block.
func Factory() ip.Factory {
	return ip.Factory{
		Type:      "digitalocean",
		Summary:   "a DigitalOcean reserved IP",
		Computes:  []string{"digitalocean"},
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, _ config.Env, on compute.Provider) (ip.Provider, error) {
			c, err := config.As[Config]("digitalocean", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c, on)
		},
	}
}
