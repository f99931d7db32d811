// Package aws runs instances on EC2.
package aws

import "github.com/drover-dev/drover/plugins/config"

// Config is the compute "aws" block. Credentials come from the AWS SDK's usual chain (AWS_PROFILE,
// AWS_ACCESS_KEY_ID, instance roles), never from the fleet file.
type Config struct {
	Region         string   `hcl:"region,optional"`
	Profile        string   `hcl:"profile,optional"`
	InstanceType   string   `hcl:"instance_type,optional"`
	SubnetID       string   `hcl:"subnet_id,optional"`
	SecurityGroups []string `hcl:"security_groups,optional"`
	KeyName        string   `hcl:"key_name,optional"`
}

// NewDefaultConfig reads AWS_REGION (or AWS_DEFAULT_REGION) and AWS_PROFILE.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{
		Region:       config.String(env, "AWS_REGION", config.String(env, "AWS_DEFAULT_REGION", "")),
		Profile:      config.String(env, "AWS_PROFILE", ""),
		InstanceType: "t3.micro",
	}
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if c.Region == "" {
		return config.Errorf("region", "is required (or set AWS_REGION)")
	}
	return nil
}
