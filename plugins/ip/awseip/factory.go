package awseip

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
)

// Factory is the awseip ip type, an Elastic IP moved between the instances of an aws compute block.
func Factory() ip.Factory {
	return ip.Factory{
		Type:      "awseip",
		Summary:   "an AWS Elastic IP",
		Computes:  []string{"aws"},
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
		Open: func(ctx context.Context, cfg any, _ config.Env, on compute.Provider) (ip.Provider, error) {
			c, err := config.As[Config]("awseip", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c, on)
		},
	}
}
