// Package loopback is the lab's failover IP: a loopback address whose port forwards move from one qemu
// instance to another.
package loopback

import (
	"net/netip"

	"github.com/drover-dev/drover/plugins/config"
)

// Config is the ip "loopback" block.
type Config struct {
	Address string `hcl:"address"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig(config.LookupEnv) *Config { return &Config{} }

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	a, err := netip.ParseAddr(c.Address)
	if err != nil || !a.IsLoopback() || !a.Is4() {
		return config.Errorf("address", "must be an IPv4 loopback address such as \"127.0.0.100\", got %q", c.Address)
	}
	return nil
}
