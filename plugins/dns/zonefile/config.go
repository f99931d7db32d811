// Package zonefile changes records by rewriting a zone file and reloading the server (NSD), for name
// servers without dynamic updates.
package zonefile

import "github.com/drover-dev/drover/plugins/config"

// Config is the dns "zonefile" block. Path is relative to the fleet file's directory unless absolute.
type Config struct {
	Zone        string   `hcl:"zone"`
	Path        string   `hcl:"path"`
	Reload      []string `hcl:"reload,optional"`
	Nameservers []string `hcl:"nameservers,optional"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig(config.LookupEnv) *Config { return &Config{} }

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if c.Zone == "" || c.Zone[len(c.Zone)-1] != '.' {
		return config.Errorf("zone", "must be a fully qualified zone ending in a dot, got %q", c.Zone)
	}
	return nil
}
