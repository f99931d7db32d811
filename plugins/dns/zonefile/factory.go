package zonefile

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
)

// Factory is the zonefile dns type: a zone file and a reload command (NSD).
func Factory() dns.Factory {
	return dns.Factory{
		Type:      "zonefile",
		Summary:   "a zone file and a reload command (NSD)",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
		Open: func(ctx context.Context, cfg any, env config.Env) (dns.Provider, error) {
			c, err := config.As[Config]("zonefile", cfg)
			if err != nil {
				return nil, err
			}
			return New(c, env.FleetDir)
		},
	}
}
