// Package vultr moves a Vultr reserved IP between the instances of a vultr compute block.
package vultr

import (
	"net/netip"

	"github.com/drover-dev/drover/plugins/config"
)

// DefaultAPIURL is Vultr's API; VULTR_API_URL points the provider elsewhere (a test's fake).
const DefaultAPIURL = "https://api.vultr.com"

// Config is the ip "vultr" block. The API key comes from VULTR_API_KEY or VULTR_API_KEY_FILE, as
// the vultr compute block's does.
type Config struct {
	// Address is the reserved IPv4 address the rollout moves, such as "203.0.113.7"; it must be
	// a reserved IP of the account in the compute block's region.
	Address string `hcl:"address"`

	APIKey string `json:"-"`
	APIURL string `json:"-"`
}

// NewDefaultConfig reads the API key (VULTR_API_KEY or VULTR_API_KEY_FILE) and VULTR_API_URL.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	key, err := config.Secret(env, "VULTR_API_KEY")
	return &Config{APIKey: key, APIURL: config.String(env, "VULTR_API_URL", DefaultAPIURL)}, err
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	a, err := netip.ParseAddr(c.Address)
	if err != nil || !a.Is4() {
		return config.Errorf("address", "must be a reserved IPv4 address such as \"203.0.113.7\", got %q", c.Address)
	}
	return nil
}

func (c *Config) addr() netip.Addr { return netip.MustParseAddr(c.Address) }
