package aws

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the aws compute type: EC2 instances, booted from AMIs published with the EBS direct
// APIs.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "aws",
		Summary:   "Amazon EC2",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
		Open: func(ctx context.Context, cfg any, _ config.Env) (compute.Provider, error) {
			c, err := config.As[Config]("aws", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c)
		},
	}
}
