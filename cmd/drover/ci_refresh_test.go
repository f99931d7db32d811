package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/rootfs"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

// refreshFleet's roles install different packages from one local archive: web nginx, api
// postgresql, tools only the base's; all three have libc6.
const refreshFleet = `
compute "sky" "cloud" {
  network = "127.0.89.0"
}

base "local" {
  mirror          = "file://MIRROR"
  security_mirror = "file://MIRROR"
}

role "web" {
  image {
    base     = "local"
    packages = ["nginx"]
  }
  deploy {
    compute      = "cloud"
    count        = 1
    ports        = [18081]
    keep_old     = "0s"
    watch        = "0s"
    auto_promote = true
    health "http" {
      port              = 18081
      interval          = "100ms"
      healthy_threshold = 1
    }
  }
}

role "api" {
  image {
    base     = "local"
    packages = ["postgresql"]
  }
  deploy {
    compute      = "cloud"
    count        = 1
    ports        = [18082]
    keep_old     = "0s"
    watch        = "0s"
    auto_promote = true
    health "http" {
      port              = 18082
      interval          = "100ms"
      healthy_threshold = 1
    }
  }
}

role "tools" {
  image {
    base = "local"
  }
}
`

// writeTestSuite writes dists/SUITE of a package archive under root with one Packages.gz holding
// "name version" entries, and its Release file: what drover asks a mirror when it refreshes.
func writeTestSuite(t testing.TB, root, suite string, entries ...string) {
	t.Helper()
	var plain bytes.Buffer
	for _, e := range entries {
		name, version, _ := strings.Cut(e, " ")
		fmt.Fprintf(&plain, "Package: %s\nVersion: %s\nArchitecture: amd64\n\n", name, version)
	}
	var packed bytes.Buffer
	zw := gzip.NewWriter(&packed)
	zw.Write(plain.Bytes())
	zw.Close()
	dir := filepath.Join(root, "dists", suite)
	os.MkdirAll(filepath.Join(dir, "main", "binary-amd64"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "main", "binary-amd64", "Packages.gz"), packed.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(packed.Bytes())
	release := fmt.Sprintf("Suite: %s\nSHA256:\n %s %d main/binary-amd64/Packages.gz\n", suite, hex.EncodeToString(sum[:]), packed.Len())
	if err := os.WriteFile(filepath.Join(dir, "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
}

// builtFrom puts in the catalog the image drover build would make of role now (with --refresh when
// refresh), as if built with the packages given ("name version"), and returns its identity.
func (e *ciEnv) builtFrom(role string, refresh bool, pkgs ...string) string {
	e.t.Helper()
	a := newApp(&bytes.Buffer{}, &bytes.Buffer{}, func(string) (string, bool) { return "", false })
	a.extraProviders = all.Providers{Compute: []compute.Factory{e.cloud.factory()}}
	f, diags := fleet.Load(e.fleet, fleet.Options{Providers: a.registry(), Deploy: rollout.NewCatalog(nil, nil)})
	if diags.HasErrors() {
		e.t.Fatalf("the fleet does not load: %v", diags.Diags)
	}
	req, err := rootfs.NewIdentifier(rootfs.Options{StateDir: e.state, DroverVersion: versionString(), AgentDir: e.boot,
		CacheDir: filepath.Join(e.dir, "cache"), Refresh: refresh}).Request(f, f.Role(role))
	if err != nil {
		e.t.Fatal(err)
	}
	m := &images.Manifest{Identity: req.Identity(), Role: role, Arch: "amd64", Created: time.Now(), Inputs: req.Inputs, Refresh: req.Refresh}
	for _, p := range pkgs {
		name, version, _ := strings.Cut(p, " ")
		m.Packages = append(m.Packages, images.Package{Name: name, Version: version, Arch: "amd64"})
	}
	cat := images.OpenCatalog(e.state)
	if !cat.Has(m.Identity) {
		s, err := cat.Stage(m.Identity)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := s.Commit(m); err != nil {
			e.t.Fatal(err)
		}
	}
	return m.Identity
}

// ciJSON runs drover ci with args and returns each role's line of its JSON result.
func (e *ciEnv) ciJSON(wantCode int, args ...string) map[string]ciRole {
	e.t.Helper()
	code, out, stderr := e.drover(append([]string{"--output", "json", "ci"}, args...)...)
	if code != wantCode {
		e.t.Fatalf("drover ci %v: exit %d, want %d\n%s%s", args, code, wantCode, out, stderr)
	}
	var res struct{ Roles []ciRole }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		e.t.Fatalf("drover ci %v: %v\n%s", args, err, out)
	}
	roles := map[string]ciRole{}
	for _, r := range res.Roles {
		roles[r.Role] = r
	}
	return roles
}

// TestCIRefreshRebuildsExactlyTheRolesAnUpdateTouches: a refresh against an unchanged mirror does
// nothing; a security update of nginx rolls out web alone, naming the package; one of libc6 rolls
// out every role; without --refresh an update is not picked up; and once the refreshed image runs,
// a refresh is a no-op again.
func TestCIRefreshRebuildsExactlyTheRolesAnUpdateTouches(t *testing.T) {
	mirror := t.TempDir()
	e := newCIEnvWith(t, strings.ReplaceAll(refreshFleet, "MIRROR", mirror), nil)
	writeTestSuite(t, mirror, "bookworm", "libc6 2.36-9+deb12u4", "nginx 1.22.1-9", "postgresql 15.6-0+deb12u1")
	writeTestSuite(t, mirror, "bookworm-updates")
	writeTestSuite(t, mirror, "bookworm-security")
	web1 := e.builtFrom("web", false, "libc6 2.36-9+deb12u4", "nginx 1.22.1-9")
	api1 := e.builtFrom("api", false, "libc6 2.36-9+deb12u4", "postgresql 15.6-0+deb12u1")
	tools1 := e.builtFrom("tools", false, "libc6 2.36-9+deb12u4")
	e.ciJSON(exitOK) // the first deploy

	start := time.Now()
	roles := e.ciJSON(exitOK, "--refresh")
	t.Logf("a refresh against an unchanged mirror: %s", time.Since(start))
	for _, r := range roles {
		if r.Result != ciUpToDate || r.Refresh != nil {
			t.Errorf("unchanged mirror: %s is %s (refresh %v)", r.Role, r.Result, r.Refresh)
		}
	}

	// nginx gets a security update: web alone would be rebuilt, and the summary says why.
	writeTestSuite(t, mirror, "bookworm-security", "nginx 1.22.1-9+deb12u1")
	if roles := e.ciJSON(exitOK); roles["web"].Result != ciUpToDate {
		t.Errorf("without --refresh an update is not picked up: web is %s", roles["web"].Result)
	}
	roles = e.ciJSON(exitOK, "--refresh", "--dry-run")
	if r := roles["web"]; r.Result != ciWouldStart || r.Image == web1 || r.Refresh == nil ||
		fmt.Sprint(r.Refresh.Changed) != "[{nginx 1.22.1-9 1.22.1-9+deb12u1}]" || r.Refresh.Predecessor != web1 {
		t.Errorf("nginx updated: web %+v", r)
	}
	if roles["api"].Result != ciUpToDate || roles["tools"].Result != ciUpToDate {
		t.Errorf("nginx updated: api %s, tools %s: neither has nginx", roles["api"].Result, roles["tools"].Result)
	}
	// drover build --refresh decides the same way: api and tools have no nginx.
	if code, out, stderr := e.drover("build", "--refresh", "api", "tools"); code != exitOK ||
		!strings.Contains(out, "api: up to date ("+api1+"; the mirror offers the versions of its packages it has)") ||
		!strings.Contains(out, "tools: up to date ("+tools1+"; the mirror offers the versions of its packages it has)") {
		t.Errorf("build --refresh api tools after the nginx update: exit %d\n%s%s", code, out, stderr)
	}
	_, out, _ := e.drover("ci", "--refresh", "--dry-run")
	if !strings.Contains(out, "refreshed:\n  web: 1 package changed in the mirror: nginx 1.22.1-9 -> 1.22.1-9+deb12u1\n") {
		t.Errorf("the summary does not say what the refresh found:\n%s", out)
	}

	// The refreshed image is built (here: put in the catalog as the build would) and rolled out.
	web2 := e.builtFrom("web", true, "libc6 2.36-9+deb12u4", "nginx 1.22.1-9+deb12u1")
	if web2 != roles["web"].Image {
		t.Fatalf("the build's identity %s is not the one drover ci decided on, %s", web2, roles["web"].Image)
	}
	if roles := e.ciJSON(exitOK, "--refresh"); roles["web"].Result != ciRolledOut || roles["api"].Result != ciUpToDate {
		t.Errorf("refresh after the nginx update: web %s, api %s", roles["web"].Result, roles["api"].Result)
	}
	if got := e.cloud.served(t); fmt.Sprint(got) != fmt.Sprint(sorted(web2, api1)) {
		t.Errorf("the cloud serves %v, want web's refreshed image and api's first", got)
	}
	// The newest web image has the update: nothing more to do, with or without --refresh.
	for _, args := range [][]string{{"--refresh"}, nil} {
		for _, r := range e.ciJSON(exitOK, args...) {
			if r.Result != ciUpToDate {
				t.Errorf("ci %v after the refreshed rollout: %s is %s", args, r.Role, r.Result)
			}
		}
	}

	// libc6, which every role has: every role changes.
	writeTestSuite(t, mirror, "bookworm-updates", "libc6 2.36-9+deb12u7")
	roles = e.ciJSON(exitOK, "--refresh", "--dry-run")
	for role, want := range map[string]string{"web": ciWouldStart, "api": ciWouldStart, "tools": ciWouldBuild} {
		if r := roles[role]; r.Result != want || r.Refresh == nil || r.Refresh.Changed[0].Name != "libc6" {
			t.Errorf("libc6 updated: %s %+v, want %s", role, r, want)
		}
	}
	if roles["tools"].Image == tools1 {
		t.Error("libc6 updated: tools keeps its identity")
	}
}

// BenchmarkCIRefreshUnchangedMirror is drover ci --refresh on the three-role fleet when the mirror
// has not changed since the last refresh, with a main index the size of bookworm's (63,000
// packages): the Release files are read, the cached parse of each index is used, no role changes.
func BenchmarkCIRefreshUnchangedMirror(b *testing.B) {
	mirror := b.TempDir()
	e := newCIEnvWith(b, strings.ReplaceAll(refreshFleet, "MIRROR", mirror), nil)
	entries := []string{"libc6 2.36-9+deb12u4", "nginx 1.22.1-9", "postgresql 15.6-0+deb12u1"}
	for i := range 63000 {
		entries = append(entries, fmt.Sprintf("package-%d 1.%d-1", i, i%97))
	}
	writeTestSuite(b, mirror, "bookworm", entries...)
	writeTestSuite(b, mirror, "bookworm-updates")
	writeTestSuite(b, mirror, "bookworm-security", "nginx 1.22.1-9")
	e.builtFrom("web", false, "libc6 2.36-9+deb12u4", "nginx 1.22.1-9")
	e.builtFrom("api", false, "libc6 2.36-9+deb12u4", "postgresql 15.6-0+deb12u1")
	e.builtFrom("tools", false, "libc6 2.36-9+deb12u4")
	e.ciJSON(exitOK)
	e.ciJSON(exitOK, "--refresh") // the first refresh reads and caches the indexes
	b.ResetTimer()
	for range b.N {
		if code, out, stderr := e.drover("ci", "--refresh"); code != exitOK || !strings.Contains(out, "3 role(s): 3 up to date") {
			b.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
	}
}
