package tree

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveInStaysInTree(t *testing.T) {
	root := fakeTree(t, map[string]string{"usr/lib/x/real.conf": "x", "etc/passwd": ""})
	for link, target := range map[string]string{
		"lib":                "usr/lib",              // relative, usrmerge style
		"etc/alternatives/x": "/usr/lib/x/real.conf", // absolute: must stay in the tree
		"etc/escape":         "../../../../../etc",   // climbs above root
		"etc/abs-escape":     "/etc",                 // the tree's /etc, not the host's
		"etc/loop":           "loop",
		"etc/dangling":       "/nonexistent/file",
	} {
		if err := symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for in, want := range map[string]string{
		"/lib/x/real.conf":      "/usr/lib/x/real.conf",
		"/etc/alternatives/x":   "/usr/lib/x/real.conf",
		"/etc/escape/passwd":    "/etc/passwd",
		"/etc/abs-escape":       "/etc",
		"/../../etc/passwd":     "/etc/passwd",
		"/etc/dangling":         "/nonexistent/file",
		"/new/dir/../file":      "/new/file",
		"/lib/x/new/sub/f.conf": "/usr/lib/x/new/sub/f.conf",
	} {
		got, err := resolveIn(root, in, true)
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("resolveIn(%q) = %q, %v; want %q", in, got, err, filepath.Join(root, want))
		}
	}
	if got, _ := resolveIn(root, "/etc/alternatives/x", false); got != filepath.Join(root, "etc/alternatives/x") {
		t.Errorf("followLast=false followed the link: %s", got)
	}
	if _, err := resolveIn(root, "/etc/loop", true); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("loop: %v", err)
	}
}
