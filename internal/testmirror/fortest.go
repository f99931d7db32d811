package testmirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DebianMirror and DebianSecurityMirror are where ForTest downloads .debs its cache lacks.
const (
	DebianMirror         = "http://deb.debian.org/debian"
	DebianSecurityMirror = "http://deb.debian.org/debian-security"
	debianKeyring        = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// CacheDebs is the directory of cached .debs of suite/arch that e2e builds share and ForTest
// makes archives from: DROVER_TEST_CACHE (default /var/tmp/drover-test-cache) /drover/debs/SUITE-ARCH,
// where drover's own base-tree cache keeps them.
func CacheDebs(suite, arch string) string {
	root := os.Getenv("DROVER_TEST_CACHE")
	if root == "" {
		root = "/var/tmp/drover-test-cache"
	}
	return filepath.Join(root, "drover", "debs", suite+"-"+arch)
}

// ForTest makes a signed archive of suite/arch for a test, from CacheDebs, that can bootstrap what
// mmdebstrap's apt variant installs plus packages: when the cache cannot (a fresh machine, or a
// package no build has fetched yet), the missing .debs are first downloaded once from Debian's
// archive into the cache. The archive lives in the test's temporary directory; its key's agent is
// stopped when the test ends. Release files are dated date (zero: now). It fails the test on error.
func ForTest(t testing.TB, suite, arch string, packages []string, date time.Time) *Mirror {
	t.Helper()
	ctx := context.Background()
	debs := CacheDebs(suite, arch)
	if err := os.MkdirAll(debs, 0o755); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		if found, _ := filepath.Glob(filepath.Join(debs, "*.deb")); len(found) > 0 {
			m, err := New(ctx, Options{Dir: filepath.Join(t.TempDir(), "archive"), Debs: debs, Suite: suite, Arch: arch, Date: date})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			problem := m.CanBootstrap(ctx, t.TempDir(), packages)
			if problem == nil {
				return m
			}
			if attempt > 0 {
				t.Fatalf("testmirror: the archive made after downloading into %s still cannot bootstrap %v: %v", debs, packages, problem)
			}
			t.Logf("testmirror: %s lacks packages (%v); downloading them from %s", debs, problem, DebianMirror)
		}
		start := time.Now()
		if err := Download(ctx, t.TempDir(), debs, suite, arch, packages); err != nil {
			t.Fatal(err)
		}
		t.Logf("testmirror: downloaded the missing .debs into %s in %s", debs, time.Since(start).Round(time.Second))
	}
}

// CanBootstrap says why apt could not install mmdebstrap's apt variant plus packages from the
// archive into an empty system (nil when it could), checking signatures with the archive's key.
// work is a scratch directory for apt's state.
func (m *Mirror) CanBootstrap(ctx context.Context, work string, packages []string) error {
	a, err := NewApt(work, m.Arch, SourcesFor(m, m.Keyring))
	if err != nil {
		return err
	}
	if out, err := a.Run(ctx, "apt-get", "update", "--error-on=any"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	if out, err := a.Run(ctx, "apt-get", append([]string{"install", "--simulate", "-y"}, bootstrapSet(packages)...)...); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// Download fetches into debs what mmdebstrap's apt variant plus packages needs from Debian's
// archive (suite, SUITE-updates, SUITE-security), verified with Debian's archive keyring. It is
// idempotent: .debs already in debs are not downloaded again. work is a scratch directory.
func Download(ctx context.Context, work, debs, suite, arch string, packages []string) error {
	sources := fmt.Sprintf("deb [signed-by=%[1]s] %[2]s %[3]s main\ndeb [signed-by=%[1]s] %[2]s %[3]s-updates main\ndeb [signed-by=%[1]s] %[4]s %[3]s-security main\n",
		debianKeyring, DebianMirror, suite, DebianSecurityMirror)
	a, err := NewApt(work, arch, sources)
	if err != nil {
		return err
	}
	if out, err := a.Run(ctx, "apt-get", "update", "--error-on=any"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(debs, "partial"), 0o755); err != nil {
		return fmt.Errorf("testmirror: %w", err)
	}
	defer os.RemoveAll(filepath.Join(debs, "partial"))
	args := append([]string{"-o", "Dir::Cache::archives=" + debs, "install", "--download-only", "-y"}, bootstrapSet(packages)...)
	if out, err := a.Run(ctx, "apt-get", args...); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}
