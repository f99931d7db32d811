// Package cloudflare changes records in a Cloudflare zone through the Cloudflare API v4, with the
// official client library (github.com/cloudflare/cloudflare-go/v6).
package cloudflare

import (
	"fmt"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns/internal/apicfg"
)

// Config is the dns "cloudflare" block. The token comes from CLOUDFLARE_API_TOKEN or
// CLOUDFLARE_API_TOKEN_FILE, never from the fleet file; it needs the Zone:Read and DNS:Edit
// permissions on the zone.
type Config struct {
	// Zone is the zone's name, such as "example.com" (a final dot is allowed).
	Zone string `hcl:"zone"`
	// Proxied, when set, is the proxy status of the records drover creates; unset means the status
	// of the records they replace. Records drover keeps keep their own status.
	Proxied *bool `hcl:"proxied,optional"`
	// APIURL replaces the API's base URL, https://api.cloudflare.com/client/v4/ (for tests, or an
	// egress proxy).
	APIURL string `hcl:"api_url,optional"`
	// Token is the API token. String and GoString never show it.
	Token string `json:"-"`
}

// NewDefaultConfig reads the API token from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	token, err := config.Secret(env, "CLOUDFLARE_API_TOKEN")
	return &Config{Token: token}, err
}

// Validate checks the values a block can get wrong. A missing token is not its concern (plans
// are made without secrets): New reports it.
func (c *Config) Validate() error {
	if err := apicfg.CheckZone(c.Zone); err != nil {
		return err
	}
	return apicfg.CheckURL("api_url", c.APIURL, "https://api.cloudflare.com/client/v4/", "the token comes from CLOUDFLARE_API_TOKEN")
}

// String describes the block without its token.
func (c Config) String() string {
	proxied := "unset"
	if c.Proxied != nil {
		proxied = fmt.Sprint(*c.Proxied)
	}
	token := "unset"
	if c.Token != "" {
		token = "set"
	}
	s := fmt.Sprintf("cloudflare zone=%q proxied=%s token=%s", c.Zone, proxied, token)
	if c.APIURL != "" {
		s += fmt.Sprintf(" api_url=%q", c.APIURL)
	}
	return s
}

// GoString keeps %#v from printing the token too.
func (c Config) GoString() string { return "cloudflare.Config{" + c.String() + "}" }

// VerifyLimit refuses proxied records for a cutover: a proxied name answers with Cloudflare's own
// addresses, never green's, so drover could not see at the authoritative servers that the cutover
// happened (the fleet decoder asks this of a dns block that a role's cutover uses).
func (c *Config) VerifyLimit() string {
	if c.Proxied != nil && *c.Proxied {
		return "its records are proxied (proxied = true): Cloudflare's servers answer with Cloudflare's addresses, never green's, so the cutover could not be verified; set proxied = false for the names drover manages"
	}
	return ""
}
