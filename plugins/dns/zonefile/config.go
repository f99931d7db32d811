// Package zonefile changes records by rewriting a zone file and reloading the server (NSD), for name
// servers without dynamic updates.
package zonefile

import (
	"net"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns/internal/apicfg"
)

// Config is the dns "zonefile" block. Path is relative to the fleet file's directory unless absolute.
type Config struct {
	Zone string `hcl:"zone"`
	Path string `hcl:"path"`
	// Reload is the command (an argument list, run without a shell) that makes the server load the
	// rewritten file, such as ["nsd-control", "reload", "lab.example."]; empty means the server
	// picks the file up by itself.
	Reload      []string `hcl:"reload,optional"`
	Nameservers []string `hcl:"nameservers,optional"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig(config.LookupEnv) *Config { return &Config{} }

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if !apicfg.ValidZone(c.Zone) || c.Zone[len(c.Zone)-1] != '.' {
		return config.Errorf("zone", "must be a fully qualified zone ending in a dot, got %q", c.Zone)
	}
	if strings.TrimSpace(c.Path) == "" {
		return config.Errorf("path", "must name the zone file, such as \"zones/lab.example.zone\"")
	}
	if len(c.Reload) > 0 && strings.TrimSpace(c.Reload[0]) == "" {
		return config.Errorf("reload", "must start with the program to run, such as [\"nsd-control\", \"reload\", %q], got %q", c.Zone, c.Reload)
	}
	for _, ns := range c.Nameservers {
		if _, _, err := net.SplitHostPort(ns); err != nil {
			return config.Errorf("nameservers", "each must be host:port, got %q", ns)
		}
	}
	return nil
}
