// Package rfc2136 changes records with RFC 2136 dynamic updates signed with TSIG (Knot, BIND, PowerDNS).
package rfc2136

import (
	"net"

	"github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns/internal/apicfg"
)

// Config is the dns "rfc2136" block. The TSIG secret comes from DROVER_TSIG_SECRET or
// DROVER_TSIG_SECRET_FILE, never from the fleet file.
type Config struct {
	// Server is the primary that accepts updates, host:port.
	Server string `hcl:"server"`
	// Zone is the zone's apex, such as "lab.example.".
	Zone string `hcl:"zone"`
	// KeyName and Algorithm name the TSIG key; Algorithm is hmac-sha256 or hmac-sha512.
	KeyName   string `hcl:"key_name,optional"`
	Algorithm string `hcl:"algorithm,optional"`
	// Nameservers lists the authoritative servers to verify a change at (host:port); empty means the
	// zone's NS records.
	Nameservers []string `hcl:"nameservers,optional"`
	Secret      string   `json:"-"`
}

// NewDefaultConfig reads the TSIG secret from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	secret, err := config.Secret(env, "DROVER_TSIG_SECRET")
	return &Config{Algorithm: "hmac-sha256", Secret: secret}, err
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		return config.Errorf("server", "must be host:port such as \"127.0.0.1:5353\", got %q", c.Server)
	}
	if !apicfg.ValidZone(c.Zone) || c.Zone[len(c.Zone)-1] != '.' {
		return config.Errorf("zone", "must be a fully qualified zone ending in a dot, such as \"lab.example.\", got %q", c.Zone)
	}
	if _, ok := dns.IsDomainName(c.KeyName); c.KeyName != "" && !ok {
		return config.Errorf("key_name", "must be a domain name such as \"drover.\", got %q", c.KeyName)
	}
	if c.Algorithm != "hmac-sha256" && c.Algorithm != "hmac-sha512" {
		return config.Errorf("algorithm", "must be \"hmac-sha256\" or \"hmac-sha512\", got %q", c.Algorithm)
	}
	for _, ns := range c.Nameservers {
		if _, _, err := net.SplitHostPort(ns); err != nil {
			return config.Errorf("nameservers", "each must be host:port, got %q", ns)
		}
	}
	return nil
}
