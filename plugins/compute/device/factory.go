package device

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

var _ compute.Slots = (*Provider)(nil)

// Factory is the device compute type: machines that already exist, reached over SSH, whose A/B
// slots strategy "ab" updates in place. A host met for the first time must have its fingerprint in
// the block's host_keys: the provider opened here confirms no first contact by itself (the refusal
// prints the fingerprint to copy there).
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "device",
		Summary:   "existing machines reached over SSH whose A/B slots are updated in place (a Raspberry Pi)",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(_ context.Context, cfg any, env config.Env) (compute.Provider, error) {
			c, err := config.As[Config]("device", cfg)
			if err != nil {
				return nil, err
			}
			return New(c, env.StateDir, env.Name, Options{FleetDir: env.FleetDir})
		},
	}
}
