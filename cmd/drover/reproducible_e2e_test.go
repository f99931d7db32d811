//go:build e2e

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/testmirror"
)

// mirrorEpoch dates the local archive's Release files: a fixed past time, so the archive's
// indexes are the same bytes on every run.
var mirrorEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// localMirror makes a signed file:// archive of bookworm/amd64 from the e2e .deb cache that can
// bootstrap the boot packages plus packages (downloading what the cache lacks once).
func localMirror(t *testing.T, packages ...string) *testmirror.Mirror {
	t.Helper()
	return testmirror.ForTest(t, "bookworm", "amd64", images.ImagePackages("amd64", nil, packages), mirrorEpoch)
}

// mirrorBase is a base block named name whose archives (the suite, -updates and -security) are
// all the local mirror m, with its key copied into fleetDir as keys/NAME.gpg (a fleet keeps its
// mirror's key in its repository).
func mirrorBase(t *testing.T, m *testmirror.Mirror, fleetDir, name string) string {
	t.Helper()
	key, err := os.ReadFile(m.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(fleetDir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fleetDir, "keys", name+".gpg"), key, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("base %q {\n  suite           = %q\n  arch            = %q\n  mirror          = %q\n  security_mirror = %q\n  keyring         = \"keys/%s.gpg\"\n}\n",
		name, m.Suite, m.Arch, m.URL(), m.URL(), name)
}

// coldBuild is one build of a role in a fleet directory of its own, with an empty state directory
// and an empty base-tree cache.
type coldBuild struct {
	fleetDir, raw, identity, sha256 string
	buildLog                        []byte
	took                            time.Duration
}

// buildCold writes fleet (the fleet file's text) into a new directory DIR/fleet and builds role
// there with DROVER_CACHE_DIR=DIR/cache, both empty; drover inherits the descriptors inherited.
func buildCold(t *testing.T, fleetText func(fleetDir string) string, role string, inherited []*os.File) coldBuild {
	t.Helper()
	top := t.TempDir()
	b := coldBuild{fleetDir: filepath.Join(top, "fleet")}
	if err := os.MkdirAll(b.fleetDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fleetFile := filepath.Join(b.fleetDir, "drover.hcl")
	if err := os.WriteFile(fleetFile, []byte(fleetText(b.fleetDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DROVER_CACHE_DIR=" + filepath.Join(top, "cache")}
	r := droverExecInheriting(t, inherited, env, "--fleet", fleetFile, "build", role)
	if r.code != 0 {
		t.Fatalf("cold build of %s in %s: exit %d\n%s", role, b.fleetDir, r.code, r.stderr)
	}
	b.took = r.elapsed
	state := filepath.Join(b.fleetDir, ".drover")
	catalog := images.OpenCatalog(state)
	list, err := catalog.List()
	if err != nil || len(list) != 1 || list[0].Role != role {
		t.Fatalf("the catalog of %s: %d images, %v; want the one image of %s", state, len(list), err, role)
	}
	b.identity = list[0].Identity
	b.raw = filepath.Join(catalog.ImageDir(b.identity), "disk.raw")
	if b.buildLog, err = os.ReadFile(filepath.Join(catalog.ImageDir(b.identity), list[0].BuildLog)); err != nil {
		t.Fatal(err)
	}
	b.sha256 = fileSum(t, b.raw)
	if list[0].ArtifactSHA256 != b.sha256 {
		t.Errorf("the manifest says the raw disk is sha256 %s, it is %s", list[0].ArtifactSHA256, b.sha256)
	}
	return b
}

// openDevNull opens /dev/null n times, closed when the test ends.
func openDevNull(t *testing.T, n int) []*os.File {
	t.Helper()
	var files []*os.File
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestE2EReproducibleFromPinnedMirror builds one small bootable role twice from scratch, from the
// same signed local file:// mirror, in different directories and at different times (each with its
// own empty state and base-tree cache): the raw disks must be the same bytes. It also checks that
// the image's apt trusts the mirror through the base's keyring (signed-by) and nothing else. Then,
// on the same mirror, drover ci --refresh (refreshFromPinnedMirror).
//
// The second build starts drover the way Packer starts its plugin, with descriptors 3, 4 and 5
// open and not close-on-exec, so that mmdebstrap runs under them on its cold cache (its shell
// scripts broke on inherited descriptors): it still succeeds, and the role's command, run inside
// the tree, sees only stdin, stdout and stderr.
func TestE2EReproducibleFromPinnedMirror(t *testing.T) {
	// It builds four base trees and boots nothing: it runs beside the package's other parallel e2e
	// tests once the serial ones are done.
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	start := time.Now()
	m := localMirror(t, "nginx")
	t.Logf("local signed mirror %s ready in %s", m.URL(), time.Since(start).Round(time.Millisecond))
	fleetText := func(dir string) string {
		return "drover {\n  name = \"repro\"\n}\n\n" + mirrorBase(t, m, dir, "pinned") +
			"\nrole \"tiny\" {\n  image {\n    base = \"pinned\"\n    run  = [\"echo drover-fds: $(ls /proc/self/fd | tr '\\\\n' ' ')\"]\n    file \"/etc/motd\" {\n      content = \"built twice, one image\\n\"\n    }\n  }\n}\n"
	}
	first := buildCold(t, fleetText, "tiny", nil)
	// The second build starts later by at least a few seconds whatever the first one took, so a
	// clock read anywhere in the build would show.
	time.Sleep(3 * time.Second)
	second := buildCold(t, fleetText, "tiny", openDevNull(t, 3))
	t.Logf("cold builds from the local mirror: %s and %s; whole test %s", first.took.Round(time.Second), second.took.Round(time.Second), time.Since(start).Round(time.Second))

	for _, b := range []coldBuild{first, second} {
		switch got := descriptorsSeen(b.buildLog); got {
		case "0 1 2 3":
		case "":
			t.Fatalf("the role's command printed nothing into the build log:\n%s", b.buildLog)
		default:
			t.Errorf("a command in the tree of %s sees descriptors %q, want 0 1 2 3 (ls's own listing is 3)", b.fleetDir, got)
		}
	}

	if first.identity != second.identity {
		t.Errorf("identities differ: %s and %s", first.identity, second.identity)
	}
	if first.sha256 != second.sha256 {
		t.Errorf("raw images differ: sha256 %s (%s) and %s (%s)\n%s", first.sha256, first.raw, second.sha256, second.raw, diffImages(t, first.raw, second.raw))
	} else {
		t.Logf("both raw images are sha256 %s", first.sha256)
	}

	root := extractRoot(t, first.raw)
	sources := debugfs(t, root, "cat /etc/apt/sources.list")
	var debLines []string
	for _, l := range strings.Split(sources, "\n") {
		if strings.HasPrefix(l, "deb ") || strings.HasPrefix(l, "deb-src ") { // not debugfs's banner
			debLines = append(debLines, l)
		}
	}
	var want []string
	for _, suite := range m.Suites() {
		want = append(want, "deb [signed-by=/etc/apt/keyrings/drover-archive.gpg] "+m.URL()+" "+suite+" main")
	}
	if strings.Join(debLines, "\n") != strings.Join(want, "\n") {
		t.Errorf("the image's sources.list has\n%s\nwant exactly\n%s", strings.Join(debLines, "\n"), strings.Join(want, "\n"))
	}
	key, _ := os.ReadFile(m.Keyring)
	if got := debugfs(t, root, "cat /etc/apt/keyrings/drover-archive.gpg"); !strings.Contains(got, string(key)) {
		t.Errorf("the image's /etc/apt/keyrings/drover-archive.gpg is not the mirror's key (%d bytes, want %d)", len(got), len(key))
	}

	t.Run("refresh", func(t *testing.T) { refreshFromPinnedMirror(t, m, second, fleetText) })
}

// refreshFromPinnedMirror goes on in the second build's directory with a role that installs nginx
// beside tiny, which does not: a refresh against the unchanged mirror rebuilds nothing; after a
// newer nginx lands in the mirror's security suite it rebuilds web alone, says why, and the new
// image has that nginx; a refresh after that rebuilds nothing again.
func refreshFromPinnedMirror(t *testing.T, m *testmirror.Mirror, b coldBuild, fleetText func(string) string) {
	fleetFile := filepath.Join(b.fleetDir, "drover.hcl")
	withWeb := fleetText(b.fleetDir) + "\nrole \"web\" {\n  image {\n    base     = \"pinned\"\n    packages = [\"nginx\"]\n  }\n}\n"
	if err := os.WriteFile(fleetFile, []byte(withWeb), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DROVER_CACHE_DIR=" + filepath.Join(filepath.Dir(b.fleetDir), "cache")}
	if r := droverExec(t, env, "--fleet", fleetFile, "build", "web"); r.code != 0 {
		t.Fatalf("build web: exit %d\n%s", r.code, r.stderr)
	}
	ci := func(what string) (map[string]ciRole, result) {
		t.Helper()
		r := droverExec(t, env, "--fleet", fleetFile, "--output", "json", "ci", "--refresh")
		var res struct{ Roles []ciRole }
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
			t.Fatalf("drover ci --refresh, %s: exit %d, %v\n%s\n%s", what, r.code, err, r.stdout, r.stderr)
		}
		roles := map[string]ciRole{}
		for _, cr := range res.Roles {
			roles[cr.Role] = cr
		}
		t.Logf("drover ci --refresh, %s: %s", what, r.elapsed.Round(time.Millisecond))
		return roles, r
	}
	catalog := images.OpenCatalog(filepath.Join(b.fleetDir, ".drover"))
	web1, err := catalog.Resolve("web")
	if err != nil {
		t.Fatal(err)
	}

	roles, r := ci("unchanged mirror")
	if roles["tiny"].Result != ciUpToDate || roles["web"].Result != ciUpToDate || roles["web"].Image != web1.Identity || roles["tiny"].Image != b.identity {
		t.Errorf("a refresh against the unchanged mirror: %+v", roles)
	}
	if strings.Contains(r.stderr, `"event":"step"`) {
		t.Errorf("a refresh against the unchanged mirror built something:\n%s", r.stderr)
	}

	old := nginxVersion(t, web1)
	newer, err := m.AddNewerVersion(context.Background(), "nginx", m.Suite+"-security")
	if err != nil {
		t.Fatal(err)
	}
	roles, _ = ci("nginx updated in " + m.Suite + "-security")
	web := roles["web"]
	if web.Result != ciBuilt || web.Refresh == nil || fmt.Sprint(web.Refresh.Changed) != fmt.Sprint([]images.PackageChange{{Name: "nginx", From: old, To: newer}}) {
		t.Errorf("after the nginx update web is %s, refresh %+v; want built for nginx %s -> %s", web.Result, web.Refresh, old, newer)
	}
	if roles["tiny"].Result != ciUpToDate || roles["tiny"].Image != b.identity {
		t.Errorf("after the nginx update tiny, which has no nginx, is %s (%s)", roles["tiny"].Result, roles["tiny"].Image)
	}
	web2, err := catalog.Get(web.Image)
	if err != nil {
		t.Fatal(err)
	}
	if got := nginxVersion(t, web2); got != newer || web2.Refresh == nil || web2.Refresh.Predecessor != web1.Identity {
		t.Errorf("the refreshed image has nginx %s (want %s), refresh %+v", got, newer, web2.Refresh)
	}
	if d := droverExec(t, env, "--fleet", fleetFile, "images", "diff", web1.Identity, web2.Identity); d.code != 0 || !strings.Contains(d.stdout, newer) {
		t.Errorf("images diff does not show nginx's new version: exit %d\n%s", d.code, d.stdout)
	}

	roles, _ = ci("after the refreshed build")
	for _, cr := range roles {
		if cr.Result != ciUpToDate {
			t.Errorf("a refresh once the update is in: %s is %s", cr.Role, cr.Result)
		}
	}
}

// nginxVersion is the version of nginx an image's SBOM lists.
func nginxVersion(t *testing.T, m *images.Manifest) string {
	t.Helper()
	for _, p := range m.Packages {
		if p.Name == "nginx" {
			return p.Version
		}
	}
	t.Fatalf("image %s has no nginx", m.Identity)
	return ""
}
