package etcd

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
)

// Config is the fleet file's store "etcd" block:
//
//	store "etcd" {
//	  endpoints    = ["https://etcd1.example:2379", "https://etcd2.example:2379"]
//	  prefix       = "drover/prod/"
//	  dial_timeout = "5s"
//	  tls {
//	    ca_cert = "etcd-ca.pem"
//	    cert    = "drover.pem"
//	    key     = "drover-key.pem"
//	  }
//	}
//
// The user name may be in the block or in ETCD_USERNAME; the password only in the environment
// (ETCD_PASSWORD, or a file named by ETCD_PASSWORD_FILE).
type Config struct {
	// Endpoints are the cluster's client URLs, http:// or https://. DROVER_ETCD_ENDPOINTS (comma
	// separated) sets them when the block does not.
	Endpoints []string `hcl:"endpoints,optional"`
	// Prefix is prepended to every key drover writes, so that several fleets (or other programs)
	// share a cluster; "/" is appended if missing. Empty means "drover/"; DROVER_ETCD_PREFIX sets
	// it when the block does not.
	Prefix string `hcl:"prefix,optional"`
	// Username logs in to etcd's auth; empty means no authentication.
	Username string `hcl:"username,optional"`
	// DialTimeout bounds connecting to an endpoint.
	DialTimeout string `hcl:"dial_timeout,optional"`
	// RequestTimeout bounds each operation, so that an unreachable cluster is an error naming its
	// endpoints rather than a command that hangs.
	RequestTimeout string `hcl:"request_timeout,optional"`
	// TLS configures https:// endpoints: a CA other than the system's, and a client certificate.
	TLS *TLSConfig `hcl:"tls,block"`

	// Password comes from ETCD_PASSWORD or ETCD_PASSWORD_FILE, never from the fleet file.
	Password secrets.Secret `json:"-"`
}

// TLSConfig is the etcd block's tls block. Relative paths are relative to the fleet file.
type TLSConfig struct {
	CACert     string `hcl:"ca_cert,optional"`
	Cert       string `hcl:"cert,optional"`
	Key        string `hcl:"key,optional"`
	ServerName string `hcl:"server_name,optional"`
}

// DefaultPrefix is the key prefix of a block that names none.
const DefaultPrefix = "drover/"

// NewDefaultConfig reads DROVER_ETCD_ENDPOINTS, DROVER_ETCD_PREFIX, ETCD_USERNAME and
// ETCD_PASSWORD (or ETCD_PASSWORD_FILE) from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	password, err := config.Secret(env, "ETCD_PASSWORD")
	c := &Config{
		Prefix:         config.String(env, "DROVER_ETCD_PREFIX", DefaultPrefix),
		Username:       config.String(env, "ETCD_USERNAME", ""),
		DialTimeout:    "5s",
		RequestTimeout: "30s",
		Password:       secrets.Secret(password),
	}
	if v := config.String(env, "DROVER_ETCD_ENDPOINTS", ""); v != "" {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				c.Endpoints = append(c.Endpoints, e)
			}
		}
	}
	return c, err
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return config.Errorf("endpoints", `needs at least one etcd client URL, such as ["http://127.0.0.1:2379"] (or set DROVER_ETCD_ENDPOINTS)`)
	}
	for _, e := range c.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return config.Errorf("endpoints", "must be http:// or https:// URLs of etcd's client port, such as %q, got %q", "https://etcd1.example:2379", e)
		}
		if u.Scheme == "http" && c.TLS != nil {
			return config.Errorf("endpoints", "%q is plain http, but the block has a tls block: use https:// endpoints", e)
		}
	}
	if strings.ContainsAny(c.Prefix, "\x00\r\n") {
		return config.Errorf("prefix", "must be one line, got %q", c.Prefix)
	}
	if _, err := duration(c.DialTimeout, time.Second, 5*time.Minute); err != nil {
		return config.Errorf("dial_timeout", "%s", err)
	}
	if _, err := duration(c.RequestTimeout, time.Second, time.Hour); err != nil {
		return config.Errorf("request_timeout", "%s", err)
	}
	if c.Password != "" && c.Username == "" {
		return config.Errorf("username", "is needed with ETCD_PASSWORD: set username in the block or ETCD_USERNAME")
	}
	if t := c.TLS; t != nil && (t.Cert == "") != (t.Key == "") {
		return config.Errorf("tls", "cert and key go together: a client certificate needs its key, got cert %q and key %q", t.Cert, t.Key)
	}
	return nil
}

// duration parses s and checks it is within [lo, hi]; empty means zero, a default.
func duration(s string, lo, hi time.Duration) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("must be a duration between %s and %s, such as \"5s\", got %q", lo, hi, s)
	}
	return d, nil
}

// resolve makes the tls block's relative paths relative to dir (the fleet file's directory), and
// fills in the prefix's default and trailing slash.
func (c Config) resolve(dir string) Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.TLS != nil && dir != "" {
		t := *c.TLS
		for _, p := range []*string{&t.CACert, &t.Cert, &t.Key} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		c.TLS = &t
	}
	return c
}
