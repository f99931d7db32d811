package digitalocean_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/compute/digitalocean"
)

func TestConfigValidate(t *testing.T) {
	good := func() digitalocean.Config {
		return digitalocean.Config{Region: "ams3", Size: "s-1vcpu-1gb", SpacesBucket: "my-images"}
	}
	if c := good(); c.Validate() != nil {
		t.Fatalf("a good block: %v", c.Validate())
	}
	for name, tc := range map[string]struct {
		mutate func(*digitalocean.Config)
		attr   string
	}{
		"region":       {func(c *digitalocean.Config) { c.Region = "Amsterdam" }, "region"},
		"size":         {func(c *digitalocean.Config) { c.Size = "" }, "size"},
		"vpc":          {func(c *digitalocean.Config) { c.VPCUUID = "vpc-1" }, "vpc_uuid"},
		"tag":          {func(c *digitalocean.Config) { c.Tags = []string{"a b"} }, "tags"},
		"drover tag":   {func(c *digitalocean.Config) { c.Tags = []string{"drover-mine"} }, "tags"},
		"bucket":       {func(c *digitalocean.Config) { c.SpacesBucket = "" }, "spaces_bucket"},
		"endpoint":     {func(c *digitalocean.Config) { c.SpacesEndpoint = "ams3.digitaloceanspaces.com" }, "spaces_endpoint"},
		"api url":      {func(c *digitalocean.Config) { c.APIURL = "ftp://x" }, "api_url"},
		"bucket upper": {func(c *digitalocean.Config) { c.SpacesBucket = "Images" }, "spaces_bucket"},
	} {
		c := good()
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.attr) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.attr)
		}
	}
}

func TestConfigHidesSecrets(t *testing.T) {
	c := digitalocean.Config{Region: "ams3", Token: "dop_v1_secret", SpacesKey: "KEY", SpacesSecret: "spaces-secret"}
	for _, s := range []string{c.String(), fmt.Sprintf("%#v", c), fmt.Sprint(c)} {
		if strings.Contains(s, "secret") || strings.Contains(s, "KEY") {
			t.Errorf("%q shows a secret", s)
		}
	}
}
