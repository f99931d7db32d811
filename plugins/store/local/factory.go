package local

import (
	"context"
	"path/filepath"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store"
)

// Factory is the local store type: a bbolt file, by default state.db in the state directory; a
// relative path in the block is relative to the fleet file.
func Factory() store.Factory {
	return store.Factory{
		Type:      "local",
		Summary:   "a bbolt file under the state directory",
		NewConfig: func(config.LookupEnv) (any, error) { return &Config{}, nil },
		Open: func(ctx context.Context, cfg any, env config.Env) (store.Store, error) {
			c, err := config.As[Config]("local", cfg)
			if err != nil {
				return nil, err
			}
			return Open(ctx, resolve(*c, env))
		},
	}
}

// resolve gives the file a block's config names: its path, relative to the fleet file's directory,
// else state.db in the state directory.
func resolve(c Config, env config.Env) Config {
	switch {
	case c.Path == "":
		return NewDefaultConfig(env.StateDir)
	case !filepath.IsAbs(c.Path) && env.FleetDir != "":
		c.Path = filepath.Join(env.FleetDir, c.Path)
	}
	return c
}
