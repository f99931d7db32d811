// Package route53 changes records in an Amazon Route 53 hosted zone, with the AWS SDK for Go v2
// (github.com/aws/aws-sdk-go-v2/service/route53).
package route53

import (
	"strings"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns/internal/apicfg"
)

// Config is the dns "route53" block; credentials come from the AWS SDK's chain (environment,
// shared files with Profile, SSO, instance roles), never from the fleet file.
type Config struct {
	// Zone is the hosted zone's name, such as "example.com" (a final dot is allowed).
	Zone string `hcl:"zone"`
	// HostedZoneID skips the lookup of the zone by name; needed when a public and a private zone
	// share the name.
	HostedZoneID string `hcl:"hosted_zone_id,optional"`
	Profile      string `hcl:"profile,optional"`
	// Endpoint replaces the Route 53 endpoint, such as "http://localhost:4566" (for tests, or an
	// API-compatible service).
	Endpoint string `hcl:"endpoint,optional"`
}

// NewDefaultConfig reads AWS_PROFILE.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{Profile: config.String(env, "AWS_PROFILE", "")}
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if err := apicfg.CheckZone(c.Zone); err != nil {
		return err
	}
	if id := strings.TrimPrefix(c.HostedZoneID, "/hostedzone/"); c.HostedZoneID != "" && !validID(id) {
		return config.Errorf("hosted_zone_id", "must be a hosted zone ID such as \"Z0123456789ABCDEFGHIJ\", got %q", c.HostedZoneID)
	}
	return apicfg.CheckURL("endpoint", c.Endpoint, "https://route53.amazonaws.com", "they come from the AWS SDK's chain")
}

// validID reports whether id looks like a Route 53 identifier: upper-case letters and digits.
func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
