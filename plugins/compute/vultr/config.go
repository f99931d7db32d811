// Package vultr runs instances on Vultr (API v2, through github.com/vultr/govultr/v3), booted
// from snapshots.
package vultr

import (
	"regexp"

	"github.com/drover-dev/drover/plugins/config"
)

// DefaultAPIURL is Vultr's API; VULTR_API_URL points the provider elsewhere (a test's fake).
const DefaultAPIURL = "https://api.vultr.com"

// Config is the compute "vultr" block. The API key comes from VULTR_API_KEY or
// VULTR_API_KEY_FILE, never from the fleet file.
type Config struct {
	// Region is a Vultr region ID such as "ewr" or "fra".
	Region string `hcl:"region"`
	// Plan is the instance plan, such as "vc2-1c-1gb".
	Plan string `hcl:"plan,optional"`
	// VPC is the ID of a VPC of Region that instances are attached to; empty attaches none.
	VPC string `hcl:"vpc,optional"`

	APIKey string `json:"-"`
	APIURL string `json:"-"`
}

// NewDefaultConfig reads the API key (VULTR_API_KEY or VULTR_API_KEY_FILE) and VULTR_API_URL.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	key, err := config.Secret(env, "VULTR_API_KEY")
	return &Config{Plan: "vc2-1c-1gb", APIKey: key, APIURL: config.String(env, "VULTR_API_URL", DefaultAPIURL)}, err
}

var (
	regionRE = regexp.MustCompile(`^[a-z]{3}[0-9]?$`)
	uuidRE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	switch {
	case !regionRE.MatchString(c.Region):
		return config.Errorf("region", "must be a Vultr region ID such as \"ewr\" or \"fra\", got %q", c.Region)
	case c.Plan == "":
		return config.Errorf("plan", "must name a Vultr plan such as \"vc2-1c-1gb\"")
	case c.VPC != "" && !uuidRE.MatchString(c.VPC):
		return config.Errorf("vpc", "must be a VPC ID (a UUID such as \"cb676a46-66fd-4dfb-b839-443f2e6c0b60\"), got %q", c.VPC)
	}
	return nil
}
