// Package digitalocean changes records of a domain hosted by DigitalOcean DNS through the
// DigitalOcean API v2 (/v2/domains/{domain}/records), with the official client library
// (github.com/digitalocean/godo).
package digitalocean

import (
	"fmt"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns/internal/apicfg"
)

// Config is the dns "digitalocean" block. The token comes from DIGITALOCEAN_TOKEN or
// DIGITALOCEAN_TOKEN_FILE, never from the fleet file; it needs the domain:read and domain:update
// scopes (domain:create and domain:delete for records too, on tokens with custom scopes).
type Config struct {
	// Zone is the domain's name as DigitalOcean holds it, such as "example.com" (a final dot is
	// allowed).
	Zone string `hcl:"zone"`
	// APIURL replaces the API's base URL, https://api.digitalocean.com/ (for tests, or an egress
	// proxy).
	APIURL string `hcl:"api_url,optional"`
	// Token is the API token. String and GoString never show it.
	Token string `json:"-"`
}

// NewDefaultConfig reads the API token from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	token, err := config.Secret(env, "DIGITALOCEAN_TOKEN")
	return &Config{Token: token}, err
}

// Validate checks the values a block can get wrong. A missing token is not its concern (plans are
// made without secrets): New reports it.
func (c *Config) Validate() error {
	if err := apicfg.CheckZone(c.Zone); err != nil {
		return err
	}
	return apicfg.CheckURL("api_url", c.APIURL, "https://api.digitalocean.com/", "the token comes from DIGITALOCEAN_TOKEN or DIGITALOCEAN_TOKEN_FILE")
}

// String describes the block without its token.
func (c Config) String() string {
	token := "unset"
	if c.Token != "" {
		token = "set"
	}
	s := fmt.Sprintf("digitalocean zone=%q token=%s", c.Zone, token)
	if c.APIURL != "" {
		s += fmt.Sprintf(" api_url=%q", c.APIURL)
	}
	return s
}

// GoString keeps %#v from printing the token too.
func (c Config) GoString() string { return "digitalocean.Config{" + c.String() + "}" }
