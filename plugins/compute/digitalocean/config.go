// Package digitalocean runs droplets on DigitalOcean and publishes images there as custom images
// imported from a URL, with the official client library (github.com/digitalocean/godo).
package digitalocean

import (
	"fmt"
	"net/url"
	"regexp"

	"github.com/drover-dev/drover/plugins/config"
)

// Config is the compute "digitalocean" block. The token comes from DIGITALOCEAN_TOKEN or
// DIGITALOCEAN_TOKEN_FILE, never from the fleet file; it needs the droplet, image, tag and
// reserved_ip scopes (read, create, update, delete), or full access.
type Config struct {
	// Region is the region slug droplets run in and images are imported to, such as "ams3".
	Region string `hcl:"region"`
	// Size is the droplet size slug, such as "s-1vcpu-1gb".
	Size string `hcl:"size,optional"`
	// VPCUUID is the VPC droplets join; empty means the region's default VPC.
	VPCUUID string `hcl:"vpc_uuid,optional"`
	// Tags are put on every droplet drover makes, besides drover's own.
	Tags []string `hcl:"tags,optional"`
	// APIURL replaces the API's base URL, https://api.digitalocean.com/ (for tests, or an egress
	// proxy).
	APIURL string `hcl:"api_url,optional"`
	// SpacesBucket is the Spaces bucket images are uploaded to for their import (and deleted from
	// once imported). It must exist; a private bucket is fine: the import reads a presigned URL.
	SpacesBucket string `hcl:"spaces_bucket"`
	// SpacesEndpoint is the Spaces endpoint of the bucket; empty means the block's region's,
	// https://REGION.digitaloceanspaces.com (Spaces is not in every region: name one that has it).
	SpacesEndpoint string `hcl:"spaces_endpoint,optional"`
	// SpacesPathStyle puts the bucket in the URL's path rather than its host name, for an
	// S3-compatible store without virtual-host names (Spaces has them; the cloud lab's has not).
	SpacesPathStyle bool `hcl:"spaces_path_style,optional"`
	// Token is the API token; SpacesKey and SpacesSecret the Spaces access key (from
	// SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY, or their _FILE forms). String and
	// GoString never show them.
	Token        string `json:"-"`
	SpacesKey    string `json:"-"`
	SpacesSecret string `json:"-"`
}

// NewDefaultConfig reads the API token and the Spaces key from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	token, err := config.Secret(env, "DIGITALOCEAN_TOKEN")
	if err != nil {
		return nil, err
	}
	key, err := config.Secret(env, "SPACES_ACCESS_KEY_ID")
	if err != nil {
		return nil, err
	}
	secret, err := config.Secret(env, "SPACES_SECRET_ACCESS_KEY")
	return &Config{Size: "s-1vcpu-1gb", Token: token, SpacesKey: key, SpacesSecret: secret}, err
}

var (
	regionSlug = regexp.MustCompile(`^[a-z]{3}[0-9]$`)
	sizeSlug   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	uuidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// Validate checks the values a block can get wrong. A missing token is not its concern (plans are
// made without secrets): New reports it.
func (c *Config) Validate() error {
	switch {
	case !regionSlug.MatchString(c.Region):
		return config.Errorf("region", "must be a DigitalOcean region slug such as \"ams3\" or \"nyc1\", got %q", c.Region)
	case !sizeSlug.MatchString(c.Size):
		return config.Errorf("size", "must be a droplet size slug such as \"s-1vcpu-1gb\", got %q", c.Size)
	case c.VPCUUID != "" && !uuidRE.MatchString(c.VPCUUID):
		return config.Errorf("vpc_uuid", "must be a VPC's UUID such as \"5a4981aa-9653-4bd1-bef5-d6bff52042e4\", got %q", c.VPCUUID)
	}
	for _, t := range c.Tags {
		if !validTag(t) || len(t) > 255 {
			return config.Errorf("tags", "%q is not a DigitalOcean tag: letters, digits, colons, dashes and underscores, up to 255", t)
		}
		if isDroverTag(t) {
			return config.Errorf("tags", "%q starts with \"drover\", which drover keeps for its own tags", t)
		}
	}
	if c.APIURL != "" && !httpURL(c.APIURL) {
		return config.Errorf("api_url", "must be an http(s) URL such as \"https://api.digitalocean.com/\", got %q", c.APIURL)
	}
	if !bucketName.MatchString(c.SpacesBucket) {
		return config.Errorf("spaces_bucket", "must name a Spaces bucket (3 to 63 lowercase letters, digits, dots and dashes), got %q", c.SpacesBucket)
	}
	if c.SpacesEndpoint != "" && !httpURL(c.SpacesEndpoint) {
		return config.Errorf("spaces_endpoint", "must be an http(s) URL such as \"https://ams3.digitaloceanspaces.com\", got %q", c.SpacesEndpoint)
	}
	return nil
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// spacesEndpoint is the Spaces endpoint images are uploaded to.
func (c *Config) spacesEndpoint() string {
	if c.SpacesEndpoint != "" {
		return c.SpacesEndpoint
	}
	return "https://" + c.Region + ".digitaloceanspaces.com"
}

// String describes the block without its token.
func (c Config) String() string {
	token := "unset"
	if c.Token != "" {
		token = "set"
	}
	spaces := "unset"
	if c.SpacesKey != "" && c.SpacesSecret != "" {
		spaces = "set"
	}
	return fmt.Sprintf("digitalocean region=%q size=%q spaces_bucket=%q token=%s spaces_key=%s", c.Region, c.Size, c.SpacesBucket, token, spaces)
}

// GoString keeps %#v from printing the token too.
func (c Config) GoString() string { return "digitalocean.Config{" + c.String() + "}" }
