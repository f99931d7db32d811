package tree

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeTree makes a minimal tree with the given files (path inside the
// tree -> content) and returns its root.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		writeTestFile(t, filepath.Join(root, p), content)
	}
	return root
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// treePasswd and treeGroup give the fake tree users whose ids differ from
// any build host's: "daemon" exists on Debian hosts as uid 1.
const (
	treePasswd = "root:x:0:0:root:/root:/bin/bash\n" +
		"daemon:x:4001:4002::/usr/sbin:/usr/sbin/nologin\n" +
		"drover-svc:x:4100:4200:drover:/var/lib/drover:/usr/sbin/nologin\n"
	treeGroup = "root:x:0:\n" +
		"daemon:x:4002:\n" +
		"drover-svc:x:4200:\n" +
		"drover-ops:x:4300:drover-svc\n"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
}

func symlink(target, p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.Symlink(target, p)
}
