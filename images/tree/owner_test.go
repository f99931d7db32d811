package tree

import (
	"strings"
	"testing"
)

func TestResolveOwnerUsesTheTree(t *testing.T) {
	root := fakeTree(t, map[string]string{"etc/passwd": treePasswd, "etc/group": treeGroup})
	for owner, want := range map[string][2]int{
		"":                      {0, 0},
		"root":                  {0, 0},
		"daemon":                {4001, 4002}, // uid 1 on the host; the tree's ids win
		"drover-svc":            {4100, 4200},
		"drover-svc:drover-ops": {4100, 4300},
		"drover-svc:daemon":     {4100, 4002},
		"4100":                  {4100, 4200},
		"5000:5001":             {5000, 5001},
		"drover-svc:7":          {4100, 7},
	} {
		uid, gid, err := resolveOwner(root, owner)
		if err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("resolveOwner(%q) = %d, %d, %v; want %d, %d", owner, uid, gid, err, want[0], want[1])
		}
	}
	for owner, msg := range map[string]string{
		"nobody-here":        `no user "nobody-here" in the tree's /etc/passwd`,
		"drover-svc:nogroup": `no group "nogroup" in the tree's /etc/group`,
		"5000":               "uid 5000 has no entry",
		"drover-svc:":        "invalid owner",
		":root":              "invalid owner",
		"-1:0":               "negative uid",
	} {
		if _, _, err := resolveOwner(root, owner); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("resolveOwner(%q) err = %v, want %q", owner, err, msg)
		}
	}
}

func TestResolveOwnerFollowsLinksInsideTree(t *testing.T) {
	// /etc/passwd as an absolute symlink must be read from the tree.
	root := fakeTree(t, map[string]string{"usr/share/base-passwd/passwd": treePasswd})
	if err := symlink("/usr/share/base-passwd/passwd", root+"/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	if uid, gid, err := resolveOwner(root, "drover-svc"); err != nil || uid != 4100 || gid != 4200 {
		t.Fatalf("got %d %d %v", uid, gid, err)
	}
}
