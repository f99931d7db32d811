//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,FileConfig

package rootfs

import (
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Config is the Packer builder's configuration (`source "drover-rootfs" "web" {...}`): the same inputs
// as a role's image block in a drover fleet file, for Packer users.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Role names the image; it is baked into /etc/drover/image.json.
	Role string `mapstructure:"role" required:"true"`
	// Suite, Mirror, Snapshot, Arch and Components describe the Debian base (defaults: bookworm,
	// deb.debian.org, no snapshot, amd64, main).
	Suite      string   `mapstructure:"suite"`
	Mirror     string   `mapstructure:"mirror"`
	Snapshot   string   `mapstructure:"snapshot"`
	Arch       string   `mapstructure:"arch"`
	Components []string `mapstructure:"components"`
	// SecurityMirror is the security archive (default deb.debian.org/debian-security); Updates =
	// false, with UpdatesOffReason saying why, leaves SUITE-updates and SUITE-security out, as in a
	// fleet file's base block.
	SecurityMirror   string `mapstructure:"security_mirror"`
	Updates          *bool  `mapstructure:"updates"`
	UpdatesOffReason string `mapstructure:"updates_off_reason"`
	// Packages are installed on top of the boot packages.
	Packages []string `mapstructure:"packages"`
	// File blocks copy files into the image.
	Files []FileConfig `mapstructure:"file"`
	// Run is shell commands run inside the image tree.
	Run []string `mapstructure:"run"`
	// AnsiblePlaybook is run through Ansible's chroot connection.
	AnsiblePlaybook string `mapstructure:"ansible_playbook"`
	// MinSize is the smallest root filesystem ("2GiB"); Headroom the percent of free space on top.
	MinSize  string `mapstructure:"min_size"`
	Headroom int    `mapstructure:"headroom"`
	// Formats are the disk formats to write: raw, qcow2.
	Formats []string `mapstructure:"formats"`
	// StateDir holds the image catalog (default .drover).
	StateDir string `mapstructure:"state_dir"`
	// CacheDir holds base trees and downloaded packages (default: $DROVER_CACHE_DIR, else
	// STATE_DIR/cache, as for drover build), so Packer and drover build can share them.
	CacheDir string `mapstructure:"cache_dir"`
	// AgentDir holds drover-boot-linux-ARCH (default: DROVER_BOOT_DIR or next to the plugin).
	AgentDir string `mapstructure:"agent_dir"`

	ctx interpolate.Context
}

// FileConfig is one file copied into the image.
type FileConfig struct {
	Dest    string `mapstructure:"dest" required:"true"`
	Source  string `mapstructure:"source"`
	Content string `mapstructure:"content"`
	Mode    string `mapstructure:"mode"`
	Owner   string `mapstructure:"owner"`
}
