package digitalocean

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the digitalocean compute type: droplets, booted from custom images imported from a
// URL.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "digitalocean",
		Summary:   "DigitalOcean droplets",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, _ config.Env) (compute.Provider, error) {
			c, err := config.As[Config]("digitalocean", cfg)
			if err != nil {
				return nil, err
			}
			return New(c)
		},
	}
}
