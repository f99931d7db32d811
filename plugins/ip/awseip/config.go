// Package awseip moves an AWS Elastic IP between the instances of an aws compute block.
package awseip

import (
	"strings"

	"github.com/drover-dev/drover/plugins/config"
)

// Config is the ip "awseip" block. Credentials and endpoints come from the AWS SDK's chain, as the
// aws compute block's do.
type Config struct {
	AllocationID string `hcl:"allocation_id"`
	// Region defaults to the compute block's.
	Region  string `hcl:"region,optional"`
	Profile string `hcl:"profile,optional"`
}

// NewDefaultConfig reads AWS_REGION (or AWS_DEFAULT_REGION) and AWS_PROFILE.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{
		Region:  config.String(env, "AWS_REGION", config.String(env, "AWS_DEFAULT_REGION", "")),
		Profile: config.String(env, "AWS_PROFILE", ""),
	}
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.AllocationID, "eipalloc-") {
		return config.Errorf("allocation_id", "must be an Elastic IP allocation ID such as \"eipalloc-0123456789abcdef0\", got %q", c.AllocationID)
	}
	return nil
}
