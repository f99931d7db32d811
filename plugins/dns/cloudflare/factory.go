package cloudflare

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
)

// Factory is the cloudflare dns type: Cloudflare DNS.
func Factory() dns.Factory {
	return dns.Factory{
		Type:      "cloudflare",
		Summary:   "Cloudflare DNS",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, env config.Env) (dns.Provider, error) {
			c, err := config.As[Config]("cloudflare", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c)
		},
	}
}
