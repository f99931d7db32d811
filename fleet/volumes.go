package fleet

import (
	"io/fs"
	"math/big"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Volume is a block device that belongs to a role rather than to an instance: created at the
// role's first deploy, handed from blue to green by the handoff strategy, mounted by drover-boot
// before the role's services start (no volume, no services).
type Volume struct {
	// Name names the volume within its role; it is also the filesystem label, so it fits the
	// shortest label drover formats (XFS: 12 bytes).
	Name    string
	SizeGiB int
	// Mount is the clean absolute directory the filesystem is mounted on inside the instance.
	Mount string
	// FS is the filesystem drover-boot makes on a blank volume: "ext4" (the default) or "xfs".
	FS string
	// SnapshotBefore asks for a snapshot of the volume before each handoff (the default).
	SnapshotBefore bool
	// Owner is "user[:group]" applied to the mount point once mounted; empty leaves it as it is
	// (root:root on a new filesystem).
	Owner string
	// Mode is the mount point's permission bits once mounted; zero leaves them as they are.
	Mode  fs.FileMode
	Range hcl.Range
}

// Filesystems a volume may hold.
var volumeFilesystems = []string{"ext4", "xfs"}

// DefaultVolumeFS is the filesystem a volume without fs gets.
const DefaultVolumeFS = "ext4"

// MaxVolumeGiB is the largest volume size (EBS's and the lab's limit: 16 TiB).
const MaxVolumeGiB = 16384

var (
	volumeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "size", Required: true}, {Name: "mount", Required: true}, {Name: "fs"},
		{Name: "snapshot_before"}, {Name: "owner"}, {Name: "mode"},
	}}
	volumeNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,11}$`)
	volumeSizeRE = regexp.MustCompile(`^([0-9]{1,6}) ?(GiB|TiB)$`)
	// reservedMounts are the directories a volume may not cover or sit under: the root and the
	// kernel's and systemd's own filesystems.
	reservedMounts = []string{"/run", "/proc", "/sys", "/dev"}
)

// volumeHolder is implemented by the configs of compute providers that can attach a volume to an
// instance (compute.Volumes): a deploy's volume blocks need one.
type volumeHolder interface {
	HasVolumes() bool
}

// userDataEditing is implemented by the configs of compute providers that can change a stopped
// instance's user-data (compute.UserDataEditor): a role with volumes and Vault secrets needs one.
type userDataEditing interface {
	EditsUserData() bool
}

// decodeVolume reads one volume block of a deploy; ok is false when it holds a bad value (it is
// then left out of the deploy).
func (d *decoder) decodeVolume(b *hcl.Block) (Volume, bool) {
	v := Volume{Name: b.Labels[0], FS: DefaultVolumeFS, SnapshotBefore: true, Range: b.DefRange}
	ok := true
	if !volumeNameRE.MatchString(v.Name) {
		d.errorf(b.LabelRanges[0], "Invalid volume name",
			"A volume name is also its filesystem label: a lower-case letter, then up to 11 lower-case letters, digits, '_' or '-', such as \"pgdata\"; got %q.", v.Name)
		ok = false
	}
	c := d.content(b.Body, volumeSchema)
	if attr, set := c.Attributes["size"]; set {
		var s string
		if d.str(c.Attributes, "size", &s) {
			if v.SizeGiB = parseVolumeSize(s); v.SizeGiB == 0 {
				d.errorf(attr.Expr.Range(), "Invalid volume size",
					"\"size\" is a whole number of GiB or TiB between 1GiB and 16TiB, such as \"20GiB\" or \"1TiB\"; got %q.", s)
				ok = false
			}
		} else {
			ok = false
		}
	}
	if attr, set := c.Attributes["mount"]; set {
		if d.str(c.Attributes, "mount", &v.Mount) {
			if problem := mountProblem(v.Mount); problem != "" {
				d.errorf(attr.Expr.Range(), "Invalid mount point", "\"mount\" is the directory the volume is mounted on: %s; got %q.", problem, v.Mount)
				ok = false
			}
		} else {
			ok = false
		}
	}
	if d.str(c.Attributes, "fs", &v.FS) && !d.oneOf(c.Attributes, "fs", v.FS, volumeFilesystems...) {
		ok = false
	}
	d.boolean(c.Attributes, "snapshot_before", &v.SnapshotBefore)
	if d.str(c.Attributes, "owner", &v.Owner) && !ownerPattern.MatchString(v.Owner) {
		d.errorf(c.Attributes["owner"].Expr.Range(), "Invalid volume owner", "\"owner\" is applied to the mount point: \"user\" or \"user:group\", got %q.", v.Owner)
		ok = false
	}
	var mode string
	if d.str(c.Attributes, "mode", &mode) {
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || m == 0 || m > 0o7777 {
			d.errorf(c.Attributes["mode"].Expr.Range(), "Invalid mount point mode", "\"mode\" is the mount point's permissions, an octal string such as \"0700\" or \"0755\", got %q.", mode)
			ok = false
		}
		v.Mode = fsMode(m)
	}
	return v, ok
}

// parseVolumeSize reads "20GiB", "1TiB" (or "20 GiB") into GiB; 0 when it is not one or is out of
// range.
func parseVolumeSize(s string) int {
	m := volumeSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, ok := new(big.Int).SetString(m[1], 10)
	if !ok {
		return 0
	}
	if m[2] == "TiB" {
		n.Mul(n, big.NewInt(1024))
	}
	if n.Sign() <= 0 || n.Cmp(big.NewInt(MaxVolumeGiB)) > 0 {
		return 0
	}
	return int(n.Int64())
}

// mountProblem says what is wrong with a mount point, or "".
func mountProblem(m string) string {
	switch {
	case !path.IsAbs(m):
		return "want an absolute path such as \"/var/lib/postgresql\""
	case strings.ContainsFunc(m, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' || r == '\\' }):
		return "want a path without spaces, backslashes or control characters"
	case path.Clean(m) != m:
		return "want a clean path (no trailing '/', no '.', '..' or '//'): " + strconv.Quote(path.Clean(m))
	case m == "/":
		return "the root filesystem is the image's, not a volume's"
	case len(m) > 255:
		return "want at most 255 bytes"
	}
	for _, r := range reservedMounts {
		if m == r || strings.HasPrefix(m, r+"/") {
			return r + " belongs to the kernel and systemd, not to a volume"
		}
	}
	return ""
}

// checkVolumes checks a deploy's volumes against each other and against its count and strategy.
func (d *decoder) checkVolumes(c *hcl.BodyContent, dep *Deploy) {
	byName := map[string]hcl.Range{}
	byMount := map[string]Volume{}
	for _, v := range dep.Volumes {
		if first, dup := byName[v.Name]; dup {
			d.errorf(v.Range, "Duplicate volume", "The deploy has two volumes named %q; the first is at %s.", v.Name, pos(first))
			continue
		}
		byName[v.Name] = v.Range
		if first, dup := byMount[v.Mount]; dup {
			d.errorf(v.Range, "Duplicate mount point", "Volumes %q and %q (at %s) are both mounted on %q; give each its own directory.",
				v.Name, first.Name, pos(first.Range), v.Mount)
			continue
		}
		byMount[v.Mount] = v
	}
	if len(dep.Volumes) == 0 {
		return
	}
	first := dep.Volumes[0].Range
	if dep.Count > 1 {
		rng := first
		if attr, ok := c.Attributes["count"]; ok {
			rng = attr.Expr.Range()
		}
		d.errorf(rng, "Volume on a role with several instances",
			"This deploy has volume %q and count = %d, but one instance at a time holds a volume (volumes per slot are not built yet): use count = 1.",
			dep.Volumes[0].Name, dep.Count)
	}
	rng := first
	if attr, ok := c.Attributes["strategy"]; ok {
		rng = attr.Expr.Range()
	}
	switch dep.Strategy {
	case "raft":
		d.errorf(rng, "Volume on a raft role",
			"A raft role keeps its data in the cluster, replaced one member at a time; it takes no volume. Remove the volume blocks, or use another strategy.")
	case "bluegreen":
		d.errorf(rng, "Volume on a bluegreen role",
			"The bluegreen strategy boots green beside blue and moves traffic to it, so green would start without the data on volume %q and blue's data would be destroyed with blue. A role with volumes uses strategy \"%s\" (the default when strategy is not set), which stops blue and moves the volume to green.",
			dep.Volumes[0].Name, HandoffStrategy)
	}
}

// HandoffStrategy is the strategy of a role with volumes, and its default: it stops blue and moves
// the volumes to green.
const HandoffStrategy = "handoff"

// checkRoleVolumes checks what a role's volumes need from the rest of the file: a compute type
// that can attach volumes and services that wait for them.
func (d *decoder) checkRoleVolumes(f *Fleet, role *Role) {
	dep := role.Deploy
	if dep == nil || len(dep.Volumes) == 0 {
		return
	}
	first := dep.Volumes[0]
	if comp := f.Provider(KindCompute, dep.Compute); comp != nil {
		if h, ok := comp.Config.(volumeHolder); !ok || !h.HasVolumes() {
			d.errorf(first.Range, "No volumes on this compute",
				"Role %q has volume %q, but its instances run on compute %q of type %q, which cannot attach a volume: deploy it to a compute type with volumes (qemu, aws, vultr, digitalocean), or remove the volume.",
				role.Name, first.Name, comp.Name, comp.Type)
		} else if e, ok := comp.Config.(userDataEditing); dep.Strategy == HandoffStrategy && (len(role.Image.SecretPaths()) > 0 || len(role.Image.Certificates) > 0) && (!ok || !e.EditsUserData()) {
			d.errorf(first.Range, "Secrets need user-data edits on this compute",
				"Role %q logs in to Vault at boot (secrets or certificates) and hands volume %q over, which stops an instance and starts it again (a rollback, drover volumes snapshot --stop and restore); each such start needs a new wrapped credential in the instance's user-data (the first one is single-use), and compute %q of type %q cannot change a stopped instance's user-data: deploy the role to a compute type that can (qemu, aws, vultr), or move its secrets and certificates out of it.",
				role.Name, first.Name, comp.Name, comp.Type)
		}
	}
	if len(role.Image.Services) == 0 {
		d.errorf(first.Range, "Volume without services",
			"Role %q mounts volume %q at boot, but its image lists no \"services\": drover-boot starts a role's services only once its volumes are mounted, so list the units that use the data (such as services = [\"postgresql\"]) in the image block.",
			role.Name, first.Name)
	}
}
