// Package route53 changes records in an Amazon Route 53 hosted zone.
package route53

import "github.com/drover-dev/drover/plugins/config"

// Config is the dns "route53" block; credentials come from the AWS SDK's chain.
type Config struct {
	Zone         string `hcl:"zone"`
	HostedZoneID string `hcl:"hosted_zone_id,optional"`
	Profile      string `hcl:"profile,optional"`
}

// NewDefaultConfig reads AWS_PROFILE.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{Profile: config.String(env, "AWS_PROFILE", "")}
}
