// Package device is the compute type for machines that already exist and are reached over SSH: a
// Raspberry Pi at home (later, home servers). Nothing is launched or destroyed: a device's
// "instances" are the two slots of its A/B card, and an update writes the other slot, boots it once
// on trial and commits it (compute.Slots), through drover-boot's slot commands on the device.
//
// The SSH host key of every host is pinned in drover's state on first contact, which needs a
// confirmation (Options.Confirm) or the fingerprint in the block's host_keys; a changed key is
// refused.
package device

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
)

// Config is the compute "device" block. The private key comes from DEVICE_SSH_KEY or
// DEVICE_SSH_KEY_FILE, or the block's key_file; never from the fleet file itself.
type Config struct {
	// Hosts are the devices, as "host" or "host:port" (port 22 by default).
	Hosts []string `hcl:"hosts"`
	// User logs in; drover-boot's slot commands need root, or sudo rights to the disk.
	User string `hcl:"user,optional"`
	// KeyFile is an OpenSSH private key file (relative to the fleet file); DEVICE_SSH_KEY wins.
	KeyFile string `hcl:"key_file,optional"`
	// HostKeys pins hosts' keys by their SHA256 fingerprint ("SHA256:..." as ssh-keygen -l prints
	// it), so first contact needs no confirmation.
	HostKeys map[string]string `hcl:"host_keys,optional"`
	// DroverBoot is drover-boot's path on the device.
	DroverBoot string `hcl:"drover_boot,optional"`

	Key []byte `json:"-"` // the private key, from the environment or KeyFile
}

// DefaultDroverBoot is where images install drover-boot.
const DefaultDroverBoot = "/usr/local/bin/drover-boot"

// NewDefaultConfig reads the key from DEVICE_SSH_KEY or DEVICE_SSH_KEY_FILE.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	key, err := config.Secret(env, "DEVICE_SSH_KEY")
	if err != nil {
		return nil, err
	}
	c := &Config{User: "root", DroverBoot: DefaultDroverBoot}
	if key != "" {
		c.Key = []byte(key)
	}
	return c, nil
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if len(c.Hosts) == 0 {
		return config.Errorf("hosts", "must name at least one device, such as [\"pi.home.arpa\"]")
	}
	for _, h := range c.Hosts {
		if _, _, err := splitHost(h); err != nil {
			return config.Errorf("hosts", "%v", err)
		}
	}
	for h, fp := range c.HostKeys {
		if !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
			return config.Errorf("host_keys", "the key of %q must be a SHA256 fingerprint as `ssh-keygen -lf KEY.pub` prints it (\"SHA256:\" and 43 characters), got %q", h, fp)
		}
	}
	if c.User == "" {
		return config.Errorf("user", "must name the user drover logs in as, such as \"root\"")
	}
	return nil
}

// splitHost returns host and port of "host" or "host:port".
func splitHost(h string) (string, int, error) {
	if h == "" {
		return "", 0, fmt.Errorf("an empty host")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		return h, 22, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("host %q: port must be 1-65535", h)
	}
	return host, p, nil
}
