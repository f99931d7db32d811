package bootdata_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

func sampleVolumes() []bootdata.VolumeMount {
	return []bootdata.VolumeMount{
		{Name: "pgdata", GuestPath: "/dev/disk/by-id/virtio-vol-1a2b", Mount: "/var/lib/postgresql", FS: "ext4", Owner: "postgres:postgres", Mode: 0o700},
		{Name: "logs", GuestPath: "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0", Mount: "/var/log/app", FS: "xfs"},
	}
}

func TestVolumesRoundTrip(t *testing.T) {
	u := sample()
	u.Volumes = sampleVolumes()
	b, err := bootdata.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"guest_path":"/dev/disk/by-id/virtio-vol-1a2b","mount":"/var/lib/postgresql","fs":"ext4","owner":"postgres:postgres","mode":"0700"`)) {
		t.Errorf("volume not in the user-data as documented: %s", b)
	}
	got, err := bootdata.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Volumes, u.Volumes) {
		t.Errorf("round trip gave %+v, want %+v", got.Volumes, u.Volumes)
	}
	if s := got.String(); !strings.Contains(s, "volume pgdata /dev/disk/by-id/virtio-vol-1a2b->/var/lib/postgresql") {
		t.Errorf("String does not show the volume: %s", s)
	}

	// A role with volumes and no secrets has no vault section.
	plain := bootdata.UserData{Version: bootdata.Version, Role: "db", Volumes: sampleVolumes()}
	if _, err := bootdata.Marshal(plain); err != nil {
		t.Errorf("volumes without secrets refused: %v", err)
	}
}

func TestVolumesRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(v []bootdata.VolumeMount) []bootdata.VolumeMount
		want   string
	}{
		"bad name":      {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Name = "PG/data"; return v }, `name "PG/data"`},
		"name too long": {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Name = "abcdefghijklm"; return v }, `name "abcdefghijklm"`},
		"guest path":    {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].GuestPath = "/dev/vdb"; return v }, `guest_path "/dev/vdb"`},
		"guest path escape": {func(v []bootdata.VolumeMount) []bootdata.VolumeMount {
			v[0].GuestPath = "/dev/disk/by-id/../../sda"
			return v
		}, "guest_path"},
		"guest path dotdot": {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].GuestPath = "/dev/disk/by-id/.."; return v }, "guest_path"},
		"relative mount":    {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Mount = "var/lib"; return v }, `mount "var/lib"`},
		"unclean mount":     {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Mount = "/var/lib/"; return v }, `mount "/var/lib/"`},
		"root mount":        {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Mount = "/"; return v }, `mount "/"`},
		"run mount":         {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Mount = "/run/drover"; return v }, "under /run"},
		"fs":                {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].FS = "btrfs"; return v }, `fs "btrfs"`},
		"owner":             {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Owner = "root:root:x"; return v }, "owner"},
		"mode":              {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[0].Mode = 0o17777; return v }, "mode"},
		"same name":         {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[1].Name = v[0].Name; return v }, "volumes[1]: name"},
		"same device":       {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[1].GuestPath = v[0].GuestPath; return v }, "volumes[1]: guest_path"},
		"same mount":        {func(v []bootdata.VolumeMount) []bootdata.VolumeMount { v[1].Mount = v[0].Mount; return v }, "volumes[1]: mount"},
	} {
		t.Run(name, func(t *testing.T) {
			u := bootdata.UserData{Version: bootdata.Version, Role: "db", Volumes: tc.change(sampleVolumes())}
			err := u.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "bootdata: volumes[") {
				t.Errorf("Validate = %v, want an error about %s", err, tc.want)
			}
		})
	}
}
