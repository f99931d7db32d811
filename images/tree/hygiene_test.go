package tree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testHost is a build host whose traces the fake trees carry.
func testHost() hostIdentity {
	return hostIdentity{
		names:  []string{"buildhost.example.com", "buildhost"},
		resolv: []byte("nameserver 10.255.255.53\nsearch example.com\n"),
	}
}

func TestHygiene(t *testing.T) {
	root := fakeTree(t, map[string]string{
		"etc/machine-id":                   "0123456789abcdef0123456789abcdef\n",
		"var/lib/dbus/machine-id":          "0123456789abcdef0123456789abcdef\n",
		"etc/ssh/ssh_host_ed25519_key":     "PRIVATE",
		"etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA root@buildhost",
		"etc/ssh/sshd_config":              "PermitRootLogin no\n",
		"usr/lib/systemd/system/ssh.service": "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\n" +
			"ExecStartPre=/usr/sbin/sshd -t\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n",
		"var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages": "Package: x\n",
		"var/lib/apt/lists/lock":                     "",
		"var/lib/apt/lists/partial/x":                "x",
		"var/cache/apt/pkgcache.bin":                 "x",
		"var/cache/apt/archives/apt_2.6.1_amd64.deb": "x",
		"var/cache/apt/archives/partial/y.deb":       "x",
		"var/log/dpkg.log":                           "2026-11-23 install apt\n",
		"var/log/apt/history.log":                    "Commandline: apt-get install\n",
		"var/log/syslog.1":                           "old\n",
		"var/log/syslog.2.gz":                        "old\n",
		"var/log/journal/0123/system.journal":        "LPKSHHRH",
		"root/.bash_history":                         "cat /secret\n",
		"root/.profile":                              "# keep\n",
		"home/alice/.bash_history":                   "sudo -i\n",
		"home/alice/.python_history":                 "import os\n",
		"home/alice/.profile":                        "# keep\n",
		"tmp/junk":                                   "x",
		"tmp/.hidden/x":                              "x",
		"var/tmp/build/x":                            "x",
		"etc/hostname":                               "buildhost\n",
		"etc/mailname":                               "buildhost.example.com\n",
		"etc/hosts":                                  "127.0.0.1\tlocalhost\n127.0.1.1\tbuildhost.example.com buildhost # build\n10.0.0.5 db.internal\n",
		"etc/resolv.conf":                            string(testHost().resolv),
		"var/lib/dpkg/status-old":                    "x",
		"var/lib/dpkg/status":                        "x",
		"var/cache/debconf/config.dat-old":           "x",
		"var/cache/ldconfig/aux-cache":               "x",
		"usr/sbin/policy-rc.d":                       policyRCD,
		"usr/sbin/policy-rc.d.drover-saved":          "#!/bin/sh\nexit 0\n",
		"old/file":                                   "from 2000",
	})
	mustSymlink(t, "usr/lib", filepath.Join(root, "lib"))
	// Absolute links must be handled inside the tree, never followed to
	// the host: hygiene removing or clamping /etc/passwd would be a disaster.
	mustSymlink(t, "/etc/passwd", filepath.Join(root, "var/log/link"))
	mustSymlink(t, "/etc/passwd", filepath.Join(root, "etc/evil"))
	hostPasswd, _ := os.Lstat("/etc/passwd")

	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	future := time.Now().Add(time.Hour)
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, future, future)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, "old/file"), old, old); err != nil {
		t.Fatal(err)
	}

	if err := hygiene(root, epoch, testHost()); err != nil {
		t.Fatal(err)
	}

	// Times first, before reading anything updates access times: nothing
	// newer than the epoch, links' own times set too.
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Mtim.Sec > epoch.Unix() || st.Atim.Sec > epoch.Unix() {
			t.Errorf("%s: mtime %d atime %d after the epoch %d", p, st.Mtim.Sec, st.Atim.Sec, epoch.Unix())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	gone := []string{"var/lib/dbus/machine-id", "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub",
		"var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", "var/lib/apt/lists/lock",
		"var/lib/apt/lists/partial/x", "var/cache/apt/pkgcache.bin", "var/cache/apt/archives/apt_2.6.1_amd64.deb",
		"var/cache/apt/archives/partial/y.deb", "var/log/syslog.2.gz", "var/log/syslog.1", "var/log/journal/0123/system.journal",
		"var/log/link", "root/.bash_history", "home/alice/.bash_history", "home/alice/.python_history", "tmp/junk", "tmp/.hidden",
		"var/tmp/build", "etc/hostname", "etc/mailname", "etc/resolv.conf", "var/lib/dpkg/status-old",
		"var/cache/debconf/config.dat-old", "var/cache/ldconfig/aux-cache", "usr/sbin/policy-rc.d.drover-saved"}
	for _, p := range gone {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there", p)
		}
	}
	kept := map[string]string{
		"etc/machine-id":          "",
		"var/log/dpkg.log":        "",
		"var/log/apt/history.log": "",
		"root/.profile":           "# keep\n",
		"home/alice/.profile":     "# keep\n",
		"etc/ssh/sshd_config":     "PermitRootLogin no\n",
		"var/lib/dpkg/status":     "x",
		"usr/sbin/policy-rc.d":    "#!/bin/sh\nexit 0\n", // the role's own, put back
		"etc/hosts":               "127.0.0.1\tlocalhost\n10.0.0.5 db.internal\n",
	}
	for p, want := range kept {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, d := range []string{"var/log/journal/0123", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "tmp", "var/tmp"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Errorf("directory %s not kept", d)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/machine-id")); fi.Mode().Perm() != 0o444 {
		t.Errorf("machine-id mode %v", fi.Mode())
	}

	// Older times are kept, and the host's files are untouched.
	if fi, _ := os.Lstat(filepath.Join(root, "old/file")); !fi.ModTime().Equal(old) {
		t.Errorf("old mtime changed to %v", fi.ModTime())
	}
	if now, _ := os.Lstat("/etc/passwd"); hostPasswd != nil && !now.ModTime().Equal(hostPasswd.ModTime()) {
		t.Error("the host's /etc/passwd was touched")
	}
}

func TestHygieneKeepsRoleValues(t *testing.T) {
	root := fakeTree(t, map[string]string{
		"etc/hostname":    "web1\n",
		"etc/resolv.conf": "nameserver 192.0.2.53\n",
		"etc/hosts":       "127.0.0.1 localhost\n127.0.1.1 web1\n",
	})
	if err := hygiene(root, time.Unix(1700000000, 0), testHost()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"etc/hostname":    "web1\n",
		"etc/resolv.conf": "nameserver 192.0.2.53\n",
		"etc/hosts":       "127.0.0.1 localhost\n127.0.1.1 web1\n",
		"etc/machine-id":  "",
	} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}

func TestHygieneRejects(t *testing.T) {
	err := Hygiene(t.TempDir(), time.Time{})
	if err == nil || !strings.HasPrefix(err.Error(), "tree: hygiene: no epoch") {
		t.Errorf("zero epoch: %v", err)
	}
	// /proc has mounts below it: walking it must be refused.
	err = Hygiene("/proc", time.Unix(1, 0))
	if err == nil || !strings.Contains(err.Error(), "mounts below it") {
		t.Errorf("mounted tree: %v", err)
	}
}

func TestCurrentHostSkipsLocalNames(t *testing.T) {
	for _, n := range currentHost().names {
		if isLocalName(n) || n == "" {
			t.Errorf("host names include %q", n)
		}
	}
	if out, changed := dropHostNames("127.0.0.1 localhost vm\n::1 localhost\n", []string{"vm"}); !changed || out != "127.0.0.1\tlocalhost\n::1 localhost\n" {
		t.Errorf("dropHostNames = %q, %v", out, changed)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
