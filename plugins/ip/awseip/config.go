// Package awseip moves an AWS Elastic IP between instances.
package awseip

import "github.com/drover-dev/drover/plugins/config"

// Config is the ip "awseip" block.
type Config struct {
	AllocationID string `hcl:"allocation_id"`
	Region       string `hcl:"region,optional"`
}

// NewDefaultConfig reads AWS_REGION.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{Region: config.String(env, "AWS_REGION", "")}
}
