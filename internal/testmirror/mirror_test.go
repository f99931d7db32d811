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

// apt runs apt-get or apt-cache against only the given sources.list and a private state, as
// mmdebstrap's apt and an image's own apt would see the archive.
type apt struct{ dir string }

func newApt(t *testing.T, sources string) apt {
	t.Helper()
	a := apt{dir: t.TempDir()}
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "empty", "log"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"status": "", "sources.list": sources} {
		if err := os.WriteFile(filepath.Join(a.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func (a apt) run(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	opts := []string{
		"-o", "Dir::State=" + a.dir + "/state", "-o", "Dir::State::status=" + a.dir + "/status",
		"-o", "Dir::Cache=" + a.dir + "/cache", "-o", "Dir::Log=" + a.dir + "/log",
		"-o", "Dir::Etc::SourceList=" + a.dir + "/sources.list", "-o", "Dir::Etc::SourceParts=" + a.dir + "/empty",
		"-o", "Dir::Etc::Parts=" + a.dir + "/empty", "-o", "Dir::Etc::Preferences=" + a.dir + "/empty/none",
		"-o", "Dir::Etc::PreferencesParts=" + a.dir + "/empty",
		"-o", "Dir::Etc::Trusted=" + a.dir + "/empty/none.gpg", "-o", "Dir::Etc::TrustedParts=" + a.dir + "/empty",
		"-o", "APT::Architecture=amd64", "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root",
	}
	out, err := exec.Command(tool, append(opts, args...)...).CombinedOutput()
	return string(out), err
}

func sourcesFor(m *Mirror, keyring string) string {
	var b strings.Builder
	for _, s := range m.Suites() {
		fmt.Fprintf(&b, "deb [signed-by=%s] %s %s main\n", keyring, m.URL(), s)
	}
	return b.String()
}

func candidate(t *testing.T, a apt, pkg string) string {
	t.Helper()
	out, err := a.run(t, "apt-cache", "policy", pkg)
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

	a := newApt(t, sourcesFor(m, m.Keyring))
	if out, err := a.run(t, "apt-get", "update", "--error-on=any"); err != nil {
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
	if out, err := a.run(t, "apt-get", "update", "--error-on=any"); err != nil {
		t.Fatalf("apt-get update after the security update: %v\n%s", err, out)
	}
	if got := candidate(t, a, "drover-hello"); got != v {
		t.Errorf("after the security update the candidate is %s, want %s", got, v)
	}
	if out, err := a.run(t, "apt-get", "install", "--simulate", "drover-hello"); err != nil || !strings.Contains(out, "Inst drover-hello ("+v+" drover-testmirror:bookworm-security") {
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
	wrongKey := newApt(t, sourcesFor(m, other.Keyring))
	if out, err := wrongKey.run(t, "apt-get", "update", "--error-on=any"); err == nil {
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
