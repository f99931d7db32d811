package main

import (
	"fmt"
	"io/fs"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/rollout"
)

// bootVolumes implements rollout.Options.BootVolumes with bootdata: it adds vols to the user-data
// the credentials made (or to a new one naming only the role), so drover-boot mounts them before
// the role's services start. The wrapping token a credential's user-data holds is carried over as
// it is and never printed.
func bootVolumes(userData []byte, role string, vols []rollout.BootVolume) ([]byte, error) {
	u := bootdata.UserData{Version: bootdata.Version, Role: role}
	if len(userData) > 0 {
		var err error
		if u, err = bootdata.Parse(userData); err != nil {
			return nil, fmt.Errorf("the user-data to add volumes to: %w", err)
		}
	}
	u.Volumes = nil
	for _, v := range vols {
		u.Volumes = append(u.Volumes, bootdata.VolumeMount{Name: v.Name, GuestPath: v.GuestPath, Mount: v.Mount, FS: v.FS,
			Owner: v.Owner, Mode: unixMode(v.Mode)})
	}
	return bootdata.Marshal(u)
}

// unixMode is a mode's Unix bits, setuid, setgid and sticky included (fs.FileMode keeps those apart).
func unixMode(m fs.FileMode) bootdata.Mode {
	out := uint32(m.Perm())
	for bit, unix := range map[fs.FileMode]uint32{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if m&bit != 0 {
			out |= unix
		}
	}
	return bootdata.Mode(out)
}
