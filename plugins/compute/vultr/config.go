// Package vultr runs instances on Vultr.
package vultr

import "github.com/drover-dev/drover/plugins/config"

// Config is the compute "vultr" block. The API key comes from VULTR_API_KEY or VULTR_API_KEY_FILE.
type Config struct {
	Region string `hcl:"region"`
	Plan   string `hcl:"plan,optional"`
	APIKey string `json:"-"`
}

// NewDefaultConfig reads the API key from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	key, err := config.Secret(env, "VULTR_API_KEY")
	return &Config{Plan: "vc2-1c-1gb", APIKey: key}, err
}
