package etcd

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store"
)

// Factory is the etcd store type: state a team and its CI runners share. Open does not contact the
// cluster unless it must log in with a password (see New); the tls block's relative paths are
// relative to the fleet file.
func Factory() store.Factory {
	return store.Factory{
		Type:      "etcd",
		Summary:   "an etcd v3 cluster shared by a team and CI",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(_ context.Context, cfg any, env config.Env) (store.Store, error) {
			c, err := config.As[Config]("etcd", cfg)
			if err != nil {
				return nil, err
			}
			return New(c.resolve(env.FleetDir))
		},
	}
}
