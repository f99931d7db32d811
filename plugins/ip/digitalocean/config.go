// Package digitalocean moves a DigitalOcean reserved IP between the droplets of a digitalocean
// compute block, with the assign action, which takes the address from its holder in one step.
package digitalocean

import (
	"net/netip"
	"net/url"

	"github.com/drover-dev/drover/plugins/config"
)

// Config is the ip "digitalocean" block. The token comes from DIGITALOCEAN_TOKEN or
// DIGITALOCEAN_TOKEN_FILE, as the compute block's; it needs the reserved_ip and droplet scopes.
type Config struct {
	// Address is the reserved IP, such as "203.0.113.10": it must exist in the account, in the
	// compute block's region.
	Address string `hcl:"address"`
	// APIURL replaces the API's base URL (for tests, or an egress proxy); the compute block's
	// client is used when the block has one.
	APIURL string `hcl:"api_url,optional"`
	// Token is the API token. String never shows it.
	Token string `json:"-"`
}

// NewDefaultConfig reads the API token from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	token, err := config.Secret(env, "DIGITALOCEAN_TOKEN")
	return &Config{Token: token}, err
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if a, err := netip.ParseAddr(c.Address); err != nil || !a.Is4() {
		return config.Errorf("address", "must be the reserved IPv4 address, such as \"203.0.113.10\", got %q", c.Address)
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return config.Errorf("api_url", "must be an http(s) URL such as \"https://api.digitalocean.com/\", got %q", c.APIURL)
		}
	}
	return nil
}

// String describes the block without its token.
func (c Config) String() string {
	token := "unset"
	if c.Token != "" {
		token = "set"
	}
	return "digitalocean address=" + c.Address + " token=" + token
}
