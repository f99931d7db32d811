package device

import (
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the device compute type. Its Open is nil on purpose: the provider and drover-boot's
// slot commands are built and tested against a real sshd with card files, but the strategy that
// drives them ("ab") is not built and no whole update is proven on an emulated Pi, so drover
// validate refuses the block (not available yet, saying what is missing) rather than accept what is
// not proven. Tests open it with New.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "device",
		Summary:   "existing machines reached over SSH whose A/B slots are updated in place (a Raspberry Pi)",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Missing: "Built: SSH with pinned host keys, and drover-boot's slot commands (write only the blocks that differ, verify, arm a trial boot, commit). " +
			"Missing: the \"ab\" strategy that drives them in a rollout, and the proof of a whole update on an emulated Pi.",
	}
}
