package aws

import (
	"errors"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
)

func TestConfigValidate(t *testing.T) {
	env := func(k string) (string, bool) {
		return map[string]string{"AWS_REGION": "eu-west-1"}[k], k == "AWS_REGION"
	}
	good := NewDefaultConfig(env)
	if good.Region != "eu-west-1" || good.Address != AddressPublic {
		t.Fatalf("defaults = %+v", good)
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for attr, mutate := range map[string]func(*Config){
		"region":            func(c *Config) { c.Region = "" },
		"address":           func(c *Config) { c.Address = "elastic" },
		"root_volume_gb":    func(c *Config) { c.RootVolumeGB = -1 },
		"security_groups":   func(c *Config) { c.SecurityGroups = []string{"sg-1", ""} },
		"instance_profiles": func(c *Config) { c.InstanceProfiles = map[string]string{"web": "web"} },
		"instance_type":     func(c *Config) { c.InstanceType = "" },
		"zone":              func(c *Config) { c.Zone = "us-east-1a" }, // region eu-west-1
	} {
		c := *good
		mutate(&c)
		var ae *config.AttrError
		if err := c.Validate(); !errors.As(err, &ae) || ae.Attribute() != attr {
			t.Errorf("bad %s: Validate = %v, want an error about %s", attr, err, attr)
		}
	}
}

func TestInstanceProfile(t *testing.T) {
	c := &Config{InstanceProfiles: map[string]string{"arn:aws:iam::1:role/vault": "vault-profile"}}
	for arn, want := range map[string]string{
		"arn:aws:iam::1:role/vault":            "vault-profile",
		"arn:aws:iam::123456789012:role/web":   "web",
		"arn:aws:iam::123456789012:role/a/b/c": "c",
	} {
		if got, err := c.instanceProfile(arn); err != nil || got != want {
			t.Errorf("instanceProfile(%q) = %q, %v; want %q", arn, got, err, want)
		}
	}
	for _, bad := range []string{"web", "arn:aws:iam::1:user/web", "arn:aws:iam::1:role/", "arn:aws:s3:::bucket"} {
		if got, err := c.instanceProfile(bad); err == nil {
			t.Errorf("instanceProfile(%q) = %q, want an error", bad, got)
		}
	}
}
