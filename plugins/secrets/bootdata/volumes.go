package bootdata

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// VolumeMount is one volume drover-boot mounts before it starts the role's services: it waits for
// GuestPath to appear (the volume may be attached after boot), makes FS on it when it is blank
// (labelled Name), checks it, mounts it on Mount and applies Owner and Mode to the mount point.
type VolumeMount struct {
	// Name is the volume's name in its role's deploy block, and its filesystem label.
	Name string `json:"name"`
	// GuestPath is where the guest finds the device, whatever order devices come in: a
	// /dev/disk/by-id path (compute.Volume.GuestPath).
	GuestPath string `json:"guest_path"`
	// Mount is the clean absolute directory it is mounted on.
	Mount string `json:"mount"`
	// FS is "ext4" or "xfs".
	FS string `json:"fs"`
	// Owner is "user" or "user:group" given to the mount point once mounted; empty leaves it.
	Owner string `json:"owner,omitempty"`
	// Mode is the mount point's permission bits once mounted; zero leaves them.
	Mode Mode `json:"mode,omitempty"`
}

// Filesystems a VolumeMount may hold.
const (
	FSExt4 = "ext4"
	FSXFS  = "xfs"
)

// GuestPathPrefix is the directory every GuestPath is in.
const GuestPathPrefix = "/dev/disk/by-id/"

var (
	volumeNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,11}$`)
	byIDRE        = regexp.MustCompile(`^[A-Za-z0-9_.:+-]{1,200}$`)
	volumeOwnerRE = regexp.MustCompile(`^[a-z_0-9][a-z0-9_.-]*(:[a-z_0-9][a-z0-9_.-]*)?$`)
	// reservedMounts are the directories a volume may not cover or sit under (fleet refuses the
	// same).
	reservedMounts = []string{"/run", "/proc", "/sys", "/dev"}
)

func (v VolumeMount) validate() error {
	if !volumeNameRE.MatchString(v.Name) {
		return fmt.Errorf("name %q: want a lower-case letter, then up to 11 lower-case letters, digits, '_' or '-'", v.Name)
	}
	id, ok := strings.CutPrefix(v.GuestPath, GuestPathPrefix)
	if !ok || !byIDRE.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("guest_path %q: want a device under %s, such as %svirtio-vol1", v.GuestPath, GuestPathPrefix, GuestPathPrefix)
	}
	if problem := MountProblem(v.Mount); problem != "" {
		return fmt.Errorf("mount %q: %s", v.Mount, problem)
	}
	if v.FS != FSExt4 && v.FS != FSXFS {
		return fmt.Errorf("fs %q: want %q or %q", v.FS, FSExt4, FSXFS)
	}
	if v.Owner != "" && !volumeOwnerRE.MatchString(v.Owner) {
		return fmt.Errorf("owner %q: want user or user:group", v.Owner)
	}
	if v.Mode > 0o7777 {
		return fmt.Errorf("mode %s: want permission bits, at most 07777", v.Mode)
	}
	return nil
}

// MountProblem says what is wrong with a volume's mount point, or "": it must be a clean absolute
// path, not the root, and outside /run, /proc, /sys and /dev.
func MountProblem(m string) string {
	switch {
	case !path.IsAbs(m):
		return "want an absolute path"
	case strings.ContainsFunc(m, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' || r == '\\' }):
		return "want a path without spaces, backslashes or control characters"
	case path.Clean(m) != m:
		return "want a clean path"
	case m == "/":
		return "the root filesystem is the image's"
	case len(m) > 255:
		return "want at most 255 bytes"
	}
	for _, r := range reservedMounts {
		if m == r || strings.HasPrefix(m, r+"/") {
			return "under " + r + ", which belongs to the kernel and systemd"
		}
	}
	return ""
}

// validateVolumes checks each volume and that no two share a name, a device or a mount point.
func validateVolumes(vols []VolumeMount) error {
	var names, devices, mounts []string
	for i, v := range vols {
		if err := v.validate(); err != nil {
			return fmt.Errorf("bootdata: volumes[%d]: %w", i, err)
		}
		switch {
		case slices.Contains(names, v.Name):
			return fmt.Errorf("bootdata: volumes[%d]: name %q is used twice", i, v.Name)
		case slices.Contains(devices, v.GuestPath):
			return fmt.Errorf("bootdata: volumes[%d]: guest_path %q is used twice", i, v.GuestPath)
		case slices.Contains(mounts, v.Mount):
			return fmt.Errorf("bootdata: volumes[%d]: mount %q is used twice", i, v.Mount)
		}
		names, devices, mounts = append(names, v.Name), append(devices, v.GuestPath), append(mounts, v.Mount)
	}
	return nil
}
