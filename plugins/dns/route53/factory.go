package route53

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
)

// Factory is the route53 dns type: Amazon Route 53.
func Factory() dns.Factory {
	return dns.Factory{
		Type:      "route53",
		Summary:   "Amazon Route 53",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
		Open: func(ctx context.Context, cfg any, env config.Env) (dns.Provider, error) {
			c, err := config.As[Config]("route53", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c)
		},
	}
}
