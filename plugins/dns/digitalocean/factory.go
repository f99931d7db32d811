package digitalocean

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
)

// Factory is the digitalocean dns type: DigitalOcean DNS. Its providers are verified at the
// zone's NS records (ns1-3.digitalocean.com), so they do not implement dns.Verified.
func Factory() dns.Factory {
	return dns.Factory{
		Type:      "digitalocean",
		Summary:   "DigitalOcean DNS",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, env config.Env) (dns.Provider, error) {
			c, err := config.As[Config]("digitalocean", cfg)
			if err != nil {
				return nil, err
			}
			return New(ctx, c)
		},
	}
}
