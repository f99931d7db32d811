// Package vultr runs instances on Vultr (API v2, through github.com/vultr/govultr/v3), booted
// from snapshots.
package vultr

import (
	"regexp"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
)

// DefaultAPIURL is Vultr's API; VULTR_API_URL points the provider elsewhere (a test's fake).
const DefaultAPIURL = "https://api.vultr.com"

// Config is the compute "vultr" block. The API key comes from VULTR_API_KEY or
// VULTR_API_KEY_FILE, never from the fleet file.
type Config struct {
	// Region is a Vultr region ID such as "ewr" or "fra".
	Region string `hcl:"region"`
	// Plan is the instance plan, such as "vc2-1c-1gb".
	Plan string `hcl:"plan,optional"`
	// VPC is the ID of a VPC of Region that instances are attached to; empty attaches none.
	VPC string `hcl:"vpc,optional"`
	// Tags are put on every instance drover launches, besides drover's own (its labels, token
	// and ports, all starting with "drover").
	Tags []string `hcl:"tags,optional"`
	// StorageEndpoint and Bucket are the Vultr Object Storage bucket disks are uploaded to for
	// Vultr to make snapshots of, such as "https://ewr1.vultrobjects.com" and "drover-images".
	// Its keys come from VULTR_OBJECT_STORAGE_ACCESS_KEY and VULTR_OBJECT_STORAGE_SECRET_KEY (or
	// their _FILE forms). An upload is deleted once its snapshot is made.
	StorageEndpoint string `hcl:"storage_endpoint"`
	Bucket          string `hcl:"bucket"`

	APIKey                    string `json:"-"`
	APIURL                    string `json:"-"`
	StorageKey, StorageSecret string `json:"-"`
	// StoragePathStyle addresses the bucket in the path rather than the host name
	// (VULTR_OBJECT_STORAGE_PATH_STYLE=true), for stores without per-bucket host names.
	StoragePathStyle bool `json:"-"`
}

// NewDefaultConfig reads the API key (VULTR_API_KEY or VULTR_API_KEY_FILE), VULTR_API_URL and
// the object storage's keys.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	key, err := config.Secret(env, "VULTR_API_KEY")
	if err != nil {
		return nil, err
	}
	c := &Config{Plan: "vc2-1c-1gb", APIKey: key, APIURL: config.String(env, "VULTR_API_URL", DefaultAPIURL),
		StoragePathStyle: config.String(env, "VULTR_OBJECT_STORAGE_PATH_STYLE", "") == "true"}
	if c.StorageKey, err = config.Secret(env, "VULTR_OBJECT_STORAGE_ACCESS_KEY"); err != nil {
		return nil, err
	}
	if c.StorageSecret, err = config.Secret(env, "VULTR_OBJECT_STORAGE_SECRET_KEY"); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	regionRE = regexp.MustCompile(`^[a-z]{3}[0-9]?$`)
	uuidRE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// endpointRE is a base URL: scheme and host, no path.
	endpointRE = regexp.MustCompile(`^https?://[A-Za-z0-9.-]+(:[0-9]+)?/?$`)
	bucketRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	switch {
	case !regionRE.MatchString(c.Region):
		return config.Errorf("region", "must be a Vultr region ID such as \"ewr\" or \"fra\", got %q", c.Region)
	case c.Plan == "":
		return config.Errorf("plan", "must name a Vultr plan such as \"vc2-1c-1gb\"")
	case c.VPC != "" && !uuidRE.MatchString(c.VPC):
		return config.Errorf("vpc", "must be a VPC ID (a UUID such as \"cb676a46-66fd-4dfb-b839-443f2e6c0b60\"), got %q", c.VPC)
	case c.StorageEndpoint != "" && !endpointRE.MatchString(c.StorageEndpoint):
		return config.Errorf("storage_endpoint", "must be an object storage endpoint such as \"https://ewr1.vultrobjects.com\", got %q", c.StorageEndpoint)
	case c.StorageEndpoint != "" && !bucketRE.MatchString(c.Bucket):
		return config.Errorf("bucket", "must be a bucket name (3 to 63 lowercase letters, digits, dots and hyphens), got %q", c.Bucket)
	}
	for _, t := range c.Tags {
		if t == "" || strings.HasPrefix(t, "drover") {
			return config.Errorf("tags", "%q: want a non-empty tag not starting with \"drover\", which drover keeps for its own", t)
		}
	}
	return nil
}
