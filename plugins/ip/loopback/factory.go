package loopback

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
)

var _ ip.Addresser = (*Provider)(nil)

// Factory is the loopback ip type: the lab's failover address, moved between the instances of a qemu
// compute block.
func Factory() ip.Factory {
	return ip.Factory{
		Type:      "loopback",
		Summary:   "a loopback failover address (the local lab)",
		Computes:  []string{"qemu"},
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
		Open: func(_ context.Context, cfg any, env config.Env, on compute.Provider) (ip.Provider, error) {
			c, err := config.As[Config]("loopback", cfg)
			if err != nil {
				return nil, err
			}
			return New(c, on, env.StateDir)
		},
	}
}
