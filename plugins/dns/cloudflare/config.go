// Package cloudflare changes records in a Cloudflare zone.
package cloudflare

import "github.com/drover-dev/drover/plugins/config"

// Config is the dns "cloudflare" block. The token comes from CLOUDFLARE_API_TOKEN or
// CLOUDFLARE_API_TOKEN_FILE.
type Config struct {
	Zone    string `hcl:"zone"`
	Proxied *bool  `hcl:"proxied,optional"`
	Token   string `json:"-"`
}

// NewDefaultConfig reads the API token from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	token, err := config.Secret(env, "CLOUDFLARE_API_TOKEN")
	return &Config{Token: token}, err
}
