//go:build e2e

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
)

// TestE2ECurrentPackages builds the example's web role as it is, then with its base's updates turned
// off, and asks the mirror itself (its Packages indexes, fetched over HTTP) which versions each suite
// offers: the default image's kernel and nginx are the newest that bookworm, bookworm-updates and
// bookworm-security offer together; the image without updates has bookworm's own; the manifest names
// the sources; images diff shows the version changes between the two.
func TestE2ECurrentPackages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	const mirror, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	drover := func(args ...string) result {
		t.Helper()
		return droverExec(t, nil, append([]string{"--fleet", fleetFile}, args...)...)
	}
	show := func(ref string) *images.Manifest {
		t.Helper()
		r := drover("--output", "json", "images", "show", ref)
		var m images.Manifest
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("images show %s: exit %d\n%s", ref, r.code, r.stdout)
		}
		return &m
	}

	start := time.Now()
	if r := drover("build", "web"); r.code != 0 {
		t.Fatalf("build web: exit %d", r.code)
	}
	t.Logf("build web with updates: %s", time.Since(start).Round(time.Second))
	current := show("web")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	point := packagesIndex(ctx, t, mirror, "bookworm")
	all := mergeIndexes(t, point, packagesIndex(ctx, t, mirror, "bookworm-updates"), packagesIndex(ctx, t, security, "bookworm-security"))

	wantSources := []images.Source{{URL: mirror, Suite: "bookworm"}, {URL: mirror, Suite: "bookworm-updates"}, {URL: security, Suite: "bookworm-security"}}
	if !slices.Equal(current.Inputs.Base.Sources, wantSources) {
		t.Errorf("manifest sources %v, want %v", current.Inputs.Base.Sources, wantSources)
	}
	if !strings.HasPrefix(current.BaseTreeEntry, current.Inputs.BaseTree+"-") {
		t.Errorf("manifest base tree entry %q does not name the archive state of base %s", current.BaseTreeEntry, current.Inputs.BaseTree)
	}
	newest := checkNewest(t, "with updates", current, all)

	// The same base with updates off, for a reason: bookworm's own versions, and a diff that shows
	// what the updates brought.
	text, err := os.ReadFile(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	off := strings.Replace(string(text), `base "debian-bookworm" {`,
		"base \"debian-bookworm\" {\n  updates            = false\n  updates_off_reason = \"TestE2ECurrentPackages compares with the point release\"", 1)
	if off == string(text) {
		t.Fatal("the example has no base \"debian-bookworm\" block to change")
	}
	if err := os.WriteFile(fleetFile, []byte(off), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if r := drover("build", "web"); r.code != 0 {
		t.Fatalf("build web without updates: exit %d", r.code)
	}
	t.Logf("build web without updates: %s", time.Since(start).Round(time.Second))
	stale := show("web")
	if stale.Identity == current.Identity {
		t.Fatal("turning updates off did not change the image's identity")
	}
	if !slices.Equal(stale.Inputs.Base.Sources, wantSources[:1]) || stale.Inputs.Base.UpdatesOffReason == "" {
		t.Errorf("without updates: sources %v, reason %q", stale.Inputs.Base.Sources, stale.Inputs.Base.UpdatesOffReason)
	}
	old := checkNewest(t, "without updates", stale, point)

	// The diff is read in-process: its file list is thousands of lines, too many for the test log.
	cat := images.OpenCatalog(filepath.Join(fleetDir, ".drover"))
	d, err := cat.DiffImages(stale, current)
	if err != nil {
		t.Fatalf("images diff: %v", err)
	}
	diffOut := drover("images", "diff", "web@"+stale.ShortID(), "web@"+current.ShortID())
	if diffOut.code != 0 {
		t.Fatalf("drover images diff: exit %d", diffOut.code)
	}
	changed := map[string]images.PackageChange{}
	for _, c := range d.Changed {
		changed[c.Name] = c
	}
	has := func(list []images.Package, name, version string) bool {
		return slices.ContainsFunc(list, func(p images.Package) bool { return p.Name == name && p.Version == version })
	}
	for what, to := range newest {
		from := old[what]
		c, inChanged := changed[to.name]
		switch {
		case from == to && inChanged:
			t.Errorf("images diff shows %s changing although both builds have %s", to.name, to.version)
		case from.name == to.name && from.version != to.version && (!inChanged || c.From != from.version || c.To != to.version):
			t.Errorf("images diff does not show %s %s -> %s: %+v", to.name, from.version, to.version, d.Changed)
		case from.name != to.name && (!has(d.Added, to.name, to.version) || !has(d.Removed, from.name, from.version)):
			// A kernel with a new ABI is another package: linux-image-6.1.0-N-amd64.
			t.Errorf("images diff does not show %s %s replacing %s %s: added %+v, removed %+v", to.name, to.version, from.name, from.version, d.Added, d.Removed)
		}
		line := fmt.Sprintf("~ package %s %s -> %s\n", to.name, from.version, to.version)
		if from.name != to.name {
			line = fmt.Sprintf("+ package %s %s\n", to.name, to.version)
		}
		if from != to && !strings.Contains(diffOut.stdout, line) {
			t.Errorf("drover images diff does not print %q", line)
		}
	}
	t.Logf("kernel and nginx: without updates %v; with updates %v", old, newest)
}

// pkgVersion is an installed package's name and version.
type pkgVersion struct{ name, version string }

// checkNewest checks that the image's linux-image-amd64, the kernel package it depends on and nginx
// are the newest versions idx offers, and returns them by role: "metapackage", "kernel", "nginx".
func checkNewest(t *testing.T, what string, m *images.Manifest, idx map[string]debPackage) map[string]pkgVersion {
	t.Helper()
	installed := map[string]string{}
	for _, p := range m.Packages {
		installed[p.Name] = p.Version
	}
	meta, ok := idx["linux-image-amd64"]
	if !ok {
		t.Fatal("the mirror offers no linux-image-amd64")
	}
	kernel := regexp.MustCompile(`linux-image-6\.1\.[^ ,]*-amd64`).FindString(meta.depends)
	if kernel == "" {
		t.Fatalf("linux-image-amd64 %s depends on no linux-image-6.1.*: %q", meta.version, meta.depends)
	}
	got := map[string]pkgVersion{}
	for role, name := range map[string]string{"metapackage": "linux-image-amd64", "kernel": kernel, "nginx": "nginx"} {
		want, ok := idx[name]
		if !ok {
			t.Fatalf("%s: the mirror offers no %s", what, name)
		}
		got[role] = pkgVersion{name, installed[name]}
		if installed[name] != want.version {
			t.Errorf("%s: the image has %s %q, the mirror's newest is %s", what, name, installed[name], want.version)
		}
	}
	return got
}

// debPackage is a package's entry in a Packages index: the fields this test needs.
type debPackage struct{ version, depends string }

// packagesIndex downloads and parses main/binary-amd64/Packages.xz of one suite: the newest entry
// of each package (an index may list several versions of one).
func packagesIndex(ctx context.Context, t *testing.T, mirror, suite string) map[string]debPackage {
	t.Helper()
	url := mirror + "/dists/" + suite + "/main/binary-amd64/Packages.xz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d", url, resp.StatusCode)
	}
	xz := exec.CommandContext(ctx, "xz", "-dc")
	xz.Stdin = resp.Body
	out, err := xz.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := xz.Start(); err != nil {
		t.Fatalf("xz: %v", err)
	}
	idx := map[string]debPackage{}
	var name string
	var cur debPackage
	flush := func() {
		if name != "" && (idx[name].version == "" || versionLess(t, idx[name].version, cur.version)) {
			idx[name] = cur
		}
		name, cur = "", debPackage{}
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			name = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Version: "):
			cur.version = strings.TrimPrefix(line, "Version: ")
		case strings.HasPrefix(line, "Depends: "):
			cur.depends = strings.TrimPrefix(line, "Depends: ")
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, out)
	if err := xz.Wait(); err != nil {
		t.Fatalf("xz -dc %s: %v", url, err)
	}
	if len(idx) == 0 {
		t.Fatalf("%s lists no packages", url)
	}
	t.Logf("%s: %d packages", url, len(idx))
	return idx
}

// mergeIndexes keeps the newest entry of each package across indexes, as apt does with sources of
// equal priority.
func mergeIndexes(t *testing.T, idxs ...map[string]debPackage) map[string]debPackage {
	out := map[string]debPackage{}
	for _, idx := range idxs {
		for name, p := range idx {
			if have, ok := out[name]; !ok || versionLess(t, have.version, p.version) {
				out[name] = p
			}
		}
	}
	return out
}

// versionLess compares Debian versions with dpkg itself, the authority on their order. Only versions
// that differ reach dpkg, so parsing the large indexes costs a few hundred calls.
func versionLess(t *testing.T, a, b string) bool {
	if a == b {
		return false
	}
	err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(fmt.Errorf("dpkg --compare-versions: %w", err))
	}
	return err == nil
}
