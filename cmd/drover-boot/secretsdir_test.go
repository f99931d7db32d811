package main

import (
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

func TestNeedsTraverse(t *testing.T) {
	for _, c := range []struct {
		uid, gid int
		mode     bootdata.Mode
		want     bool
	}{
		{0, 0, 0o440, false},
		{0, 33, 0o400, false}, // the group may not read it: nobody but root needs the directory
		{0, 33, 0o440, true},  // nginx's workers (group www-data) read it by name
		{33, 33, 0o400, true},
		{33, 0, 0o400, true},
	} {
		got := needsTraverse([]target{{f: bootdata.SecretFile{Name: "f", Mode: c.mode}, uid: c.uid, gid: c.gid}})
		if got != c.want {
			t.Errorf("uid %d gid %d mode %s: needsTraverse = %v, want %v", c.uid, c.gid, c.mode, got, c.want)
		}
	}
}
