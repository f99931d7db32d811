package rfc2136

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
)

// Factory is the rfc2136 dns type: RFC 2136 dynamic updates with TSIG (Knot, BIND, PowerDNS).
func Factory() dns.Factory {
	return dns.Factory{
		Type:      "rfc2136",
		Summary:   "RFC 2136 dynamic updates with TSIG (Knot, BIND, PowerDNS)",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, env config.Env) (dns.Provider, error) {
			c, err := config.As[Config]("rfc2136", cfg)
			if err != nil {
				return nil, err
			}
			return New(c)
		},
	}
}
