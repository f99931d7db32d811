package testmirror

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// makeDeb builds a tiny Architecture: all package with one file.
func makeDeb(t *testing.T, dir, name, version string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	for _, d := range []string{"DEBIAN", "usr/share/" + name} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: drover tests <tests@drover.invalid>\nDescription: a package of testmirror's tests\n multi-line description\n", name, version)
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/share", name, "hello"), []byte("hello "+version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", root, filepath.Join(dir, name+"_"+version+"_all.deb")).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, out)
	}
}

func newApt(t *testing.T, sources string) Apt {
	t.Helper()
	a, err := NewApt(t.TempDir(), "amd64", sources)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func candidate(t *testing.T, a Apt, pkg string) string {
	t.Helper()
	out, err := a.Run(context.Background(), "apt-cache", "policy", pkg)
	if err != nil {
		t.Fatalf("apt-cache policy: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Candidate: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("apt-cache policy %s shows no candidate:\n%s", pkg, out)
	}
	return m[1]
}

// TestAptAcceptsTheSignedArchive: apt verifies every suite's InRelease with the exported key and
// takes the newest version; a repacked security update becomes the candidate after a re-sign, and
// dpkg agrees it is newer; another key is refused.
func TestAptAcceptsTheSignedArchive(t *testing.T) {
	ctx := context.Background()
	debs := t.TempDir()
	makeDeb(t, debs, "drover-hello", "1.0-1")
	makeDeb(t, debs, "drover-hello", "1.0-2") // the older one must not be indexed
	makeDeb(t, debs, "drover-other", "2:3.1-1")
	m, err := New(ctx, Options{Dir: filepath.Join(t.TempDir(), "archive"), Debs: debs, Suite: "bookworm", Arch: "amd64",
		Date: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, s := range m.Suites() {
		for _, f := range []string{"InRelease", "Release", "Release.gpg", "main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"} {
			if _, err := os.Stat(filepath.Join(m.Dir, "dists", s, f)); err != nil {
				t.Errorf("suite %s: %v", s, err)
			}
		}
	}
	rel, _ := os.ReadFile(filepath.Join(m.Dir, "dists/bookworm/Release"))
	for _, want := range []string{"Suite: bookworm\n", "Codename: bookworm\n", "Date: Thu, 01 Jan 2026 00:00:00 UTC\n", "Architectures: amd64\n", "Components: main\n", "SHA256:\n", "MD5Sum:\n"} {
		if !strings.Contains(string(rel), want) {
			t.Errorf("Release lacks %q:\n%s", want, rel)
		}
	}

	a := newApt(t, SourcesFor(m, m.Keyring))
	if out, err := a.Run(ctx, "apt-get", "update", "--error-on=any"); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if got := candidate(t, a, "drover-hello"); got != "1.0-2" {
		t.Errorf("drover-hello candidate %s, want 1.0-2", got)
	}
	if got := candidate(t, a, "drover-other"); got != "2:3.1-1" {
		t.Errorf("drover-other candidate %s, want 2:3.1-1", got)
	}

	v, err := m.AddNewerVersion(ctx, "drover-hello", "bookworm-security")
	if err != nil {
		t.Fatal(err)
	}
	if v != "1.0-2+drover1" || m.Version("bookworm-security", "drover-hello") != v {
		t.Errorf("repacked version %q (security has %q), want 1.0-2+drover1", v, m.Version("bookworm-security", "drover-hello"))
	}
	if err := exec.Command("dpkg", "--compare-versions", v, "gt", "1.0-2").Run(); err != nil {
		t.Errorf("dpkg does not take %s for newer than 1.0-2: %v", v, err)
	}
	if out, err := a.Run(ctx, "apt-get", "update", "--error-on=any"); err != nil {
		t.Fatalf("apt-get update after the security update: %v\n%s", err, out)
	}
	if got := candidate(t, a, "drover-hello"); got != v {
		t.Errorf("after the security update the candidate is %s, want %s", got, v)
	}
	if out, err := a.Run(ctx, "apt-get", "install", "--simulate", "drover-hello"); err != nil || !strings.Contains(out, "Inst drover-hello ("+v+" drover-testmirror:bookworm-security") {
		t.Errorf("apt-get install --simulate does not install %s from bookworm-security: %v\n%s", v, err, out)
	}
	if v2, err := m.AddNewerVersion(ctx, "drover-hello", "bookworm-updates"); err != nil || v2 != "1.0-2+drover2" {
		t.Errorf("second repack: %q, %v; want 1.0-2+drover2", v2, err)
	}

	other, err := New(ctx, Options{Dir: filepath.Join(t.TempDir(), "other"), Debs: debs, Suite: "bookworm", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wrongKey := newApt(t, SourcesFor(m, other.Keyring))
	if out, err := wrongKey.Run(ctx, "apt-get", "update", "--error-on=any"); err == nil {
		t.Errorf("apt-get update accepted the archive with another archive's key:\n%s", out)
	} else if !strings.Contains(out, "NO_PUBKEY") && !strings.Contains(out, "not signed") {
		t.Errorf("apt-get update failed, but not for the signature: %v\n%s", err, out)
	}
}

func TestBumpVersion(t *testing.T) {
	for in, want := range map[string]string{"1.0-1": "1.0-1+drover1", "1:9.2p1-2+deb12u10": "1:9.2p1-2+deb12u10+drover1", "1.0+drover1": "1.0+drover2", "1.0+drover9": "1.0+drover10"} {
		if got := bumpVersion(in); got != want {
			t.Errorf("bumpVersion(%q) = %q, want %q", in, got, want)
		}
		if err := exec.Command("dpkg", "--compare-versions", bumpVersion(in), "gt", in).Run(); err != nil {
			t.Errorf("dpkg does not take %s for newer than %s", bumpVersion(in), in)
		}
	}
}
