// Package aws runs instances on EC2 and publishes images to it as AMIs, uploading the raw disk's
// non-zero blocks with the EBS direct APIs.
package aws

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
)

// Address kinds: which of an instance's IPs Instance.Address reports.
const (
	AddressPublic  = "public"
	AddressPrivate = "private"
)

// Config is the compute "aws" block. Credentials come from the AWS SDK's usual chain (AWS_PROFILE,
// AWS_ACCESS_KEY_ID, SSO, instance roles), never from the fleet file; endpoints from the SDK's own
// AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_EBS (or AWS_ENDPOINT_URL) when set.
type Config struct {
	Region       string `hcl:"region,optional"`
	Profile      string `hcl:"profile,optional"`
	InstanceType string `hcl:"instance_type,optional"`
	SubnetID     string `hcl:"subnet_id,optional"`
	// Zone is the availability zone instances launch in and volumes are created in when SubnetID
	// is unset (with a subnet, both use the subnet's zone). It must be a zone of Region.
	Zone           string   `hcl:"zone,optional"`
	SecurityGroups []string `hcl:"security_groups,optional"`
	KeyName        string   `hcl:"key_name,optional"`
	// Address is "public" (the default) or "private": the IP drover reaches instances at. A
	// private address needs drover to run inside the VPC (or over a VPN to it).
	Address string `hcl:"address,optional"`
	// RootVolumeGB sizes the root volume; 0 keeps the image's size (the raw disk's, rounded up to
	// a whole GiB). A size below the image's is refused by EC2.
	RootVolumeGB int `hcl:"root_volume_gb,optional"`
	// InstanceProfiles maps an IAM role ARN a role asks for (aws_iam_role) to the instance
	// profile instances run with. A role not listed uses the profile of the role's own name,
	// which is what the IAM console creates along with a role for EC2.
	InstanceProfiles map[string]string `hcl:"instance_profiles,optional"`
}

// NewDefaultConfig reads AWS_REGION (or AWS_DEFAULT_REGION) and AWS_PROFILE.
func NewDefaultConfig(env config.LookupEnv) *Config {
	return &Config{
		Region:       config.String(env, "AWS_REGION", config.String(env, "AWS_DEFAULT_REGION", "")),
		Profile:      config.String(env, "AWS_PROFILE", ""),
		InstanceType: "t3.micro",
		Address:      AddressPublic,
	}
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if c.Region == "" {
		return config.Errorf("region", "is required (or set AWS_REGION)")
	}
	if c.InstanceType == "" {
		return config.Errorf("instance_type", "must name an EC2 instance type such as \"t3.micro\"")
	}
	switch c.Address {
	case "", AddressPublic, AddressPrivate:
	default:
		return config.Errorf("address", "must be %q or %q, got %q", AddressPublic, AddressPrivate, c.Address)
	}
	if c.Zone != "" && (!strings.HasPrefix(c.Zone, c.Region) || len(c.Zone) == len(c.Region)) {
		return config.Errorf("zone", "must be an availability zone of region %s, such as %q, got %q", c.Region, c.Region+"a", c.Zone)
	}
	if c.RootVolumeGB < 0 || c.RootVolumeGB > 16384 {
		return config.Errorf("root_volume_gb", "must be between 1 and 16384 GiB (or unset for the image's size), got %d", c.RootVolumeGB)
	}
	if slices.Contains(c.SecurityGroups, "") {
		return config.Errorf("security_groups", "has an empty entry: want group IDs (\"sg-...\") or, in a default VPC, names")
	}
	for arn, profile := range c.InstanceProfiles {
		if _, err := roleName(arn); err != nil {
			return config.Errorf("instance_profiles", "key %q: %v", arn, err)
		}
		if profile == "" || strings.ContainsAny(profile, " /") {
			return config.Errorf("instance_profiles", "%q maps to %q: want an instance profile name", arn, profile)
		}
	}
	return nil
}

// address is the configured address kind, "public" when unset.
func (c *Config) address() string {
	if c.Address == "" {
		return AddressPublic
	}
	return c.Address
}

// instanceProfile returns the instance profile name of the IAM role roleARN.
func (c *Config) instanceProfile(roleARN string) (string, error) {
	if p, ok := c.InstanceProfiles[roleARN]; ok {
		return p, nil
	}
	return roleName(roleARN)
}

// roleName returns the name of an IAM role ARN ("arn:aws:iam::123456789012:role/path/web" is
// "web"), as the console names the role's instance profile.
func roleName(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", fmt.Errorf("%q is not an IAM role ARN such as \"arn:aws:iam::123456789012:role/web\"", arn)
	}
	name := parts[5][strings.LastIndexByte(parts[5], '/')+1:]
	if name == "" {
		return "", fmt.Errorf("IAM role ARN %q has no role name", arn)
	}
	return name, nil
}

// RunsAsIAMRole tells drover validate that instances of this block can run as an IAM role (a
// deploy's aws_iam_role), through their instance profile.
func (c *Config) RunsAsIAMRole() bool { return true }
