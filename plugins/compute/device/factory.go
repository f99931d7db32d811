package device

import (
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the device compute type. Its Open is nil on purpose: the provider and drover-boot's
// slot commands are built and tested against a real sshd with card files, but the whole update
// (strategy "ab") has not been proven on an emulated Pi yet, so drover validate refuses the block
// (not available yet) rather than accept what is not proven. Tests open it with New.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "device",
		Summary:   "existing machines reached over SSH whose A/B slots are updated in place (a Raspberry Pi); built, not yet accepted: an update is not proven end to end on an emulated Pi",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
	}
}
