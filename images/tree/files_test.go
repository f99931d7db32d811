package tree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestInstallFiles(t *testing.T) {
	needRoot(t)
	root := fakeTree(t, map[string]string{"etc/passwd": treePasswd, "etc/group": treeGroup, "opt/real/keep": ""})
	src := filepath.Join(t.TempDir(), "src.conf")
	writeTestFile(t, src, "from source\n")
	// An absolute symlink in the tree: writes through it must land in the
	// tree's /opt/real, never the host's.
	if err := symlink("/opt/real", filepath.Join(root, "etc/app")); err != nil {
		t.Fatal(err)
	}
	// A symlink at the destination itself is replaced, not written through.
	if err := symlink("/run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	hello, resolv := "hello\n", "nameserver 192.0.2.53\n"
	err := InstallFiles(root, []File{
		{Dest: "/etc/drover/hello", Content: &hello, Owner: "drover-svc:drover-ops", Mode: 0o640},
		{Dest: "/usr/local/bin/tool", Source: src, Mode: 0o755 | fs.ModeSetuid, Owner: "daemon"},
		{Dest: "/etc/app/app.conf", Content: &hello},
		{Dest: "/etc/resolv.conf", Content: &resolv},
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(p string, mode fs.FileMode, uid, gid uint32, content string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %v uid %d gid %d; want %v %d %d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
		if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != content {
			t.Errorf("%s: content %q", p, b)
		}
	}
	check("etc/drover/hello", 0o640, 4100, 4300, hello)
	check("usr/local/bin/tool", 0o755|fs.ModeSetuid, 4001, 4002, "from source\n")
	check("opt/real/app.conf", 0o644, 0, 0, hello)
	check("etc/resolv.conf", 0o644, 0, 0, resolv)
	check("etc/drover", 0o755|fs.ModeDir, 0, 0, "")
	if _, err := os.Lstat("/opt/real/app.conf"); err == nil {
		t.Fatal("a write escaped the tree")
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "etc/drover")); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestInstallFilesRejects(t *testing.T) {
	root := fakeTree(t, map[string]string{"etc/passwd": treePasswd, "etc/group": treeGroup})
	x := "x"
	for name, tc := range map[string]struct {
		f    File
		want string
	}{
		"relative":    {File{Dest: "etc/x", Content: &x}, "not a clean absolute file path"},
		"unclean":     {File{Dest: "/etc/../x", Content: &x}, "not a clean absolute file path"},
		"no content":  {File{Dest: "/etc/x"}, "exactly one of Source and Content"},
		"both":        {File{Dest: "/etc/x", Content: &x, Source: "/etc/hostname"}, "exactly one of Source and Content"},
		"owner":       {File{Dest: "/etc/x", Content: &x, Owner: "nosuchuser"}, `no user "nosuchuser" in the tree's /etc/passwd`},
		"mode":        {File{Dest: "/etc/x", Content: &x, Mode: fs.ModeDir | 0o755}, "not a plain file mode"},
		"missing src": {File{Dest: "/etc/x", Source: "/nonexistent/src"}, "source"},
		"dir src":     {File{Dest: "/etc/x", Source: "/etc"}, "not a regular file"},
		"dest is dir": {File{Dest: "/etc", Content: &x}, "is a directory"},
		"parent file": {File{Dest: "/etc/passwd/x", Content: &x}, "not a directory"},
	} {
		err := InstallFiles(root, []File{tc.f})
		var se *StepError
		if !errors.As(err, &se) || se.Step != "files" || !strings.Contains(err.Error(), tc.want) ||
			!strings.HasPrefix(err.Error(), "tree: files: file 1 (") {
			t.Errorf("%s: err = %v, want files step error containing %q", name, err, tc.want)
		}
	}
}
