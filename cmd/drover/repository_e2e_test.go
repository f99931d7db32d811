//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/testmirror"
)

// helloDeb builds drover-hello_VERSION_all.deb into dir with dpkg-deb: a package no archive has,
// holding /usr/share/drover-hello/hello.txt, that depends on Debian's hello (which the base tree
// lacks, so the build gets it from the base's archive).
func helloDeb(t *testing.T, dir, version string) {
	t.Helper()
	src := t.TempDir()
	for name, content := range map[string]string{
		"DEBIAN/control": "Package: drover-hello\nVersion: " + version + "\nArchitecture: all\nMaintainer: drover tests <tests@drover.invalid>\n" +
			"Depends: hello\nSection: misc\nPriority: optional\nDescription: a package from a third-party repository\n made by a drover test\n",
		"usr/share/drover-hello/hello.txt": "hello from the third-party repository, version " + version + "\n",
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", src, filepath.Join(dir, "drover-hello_"+version+"_all.deb")).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
}

// unsignedHandler serves the archive under /signed/ as it is, and under /unsigned/ without its
// signatures (InRelease and Release.gpg answer 404), as an unsigned repository would.
func unsignedHandler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	mux := http.NewServeMux()
	mux.Handle("/signed/", http.StripPrefix("/signed", files))
	mux.Handle("/unsigned/", http.StripPrefix("/unsigned", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/InRelease") || strings.HasSuffix(r.URL.Path, "/Release.gpg") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	return mux
}

// TestE2EThirdPartyRepository builds a role whose image installs a package from a third-party apt
// repository the test makes: a .deb built here with dpkg-deb, in an archive signed with gpg
// (internal/testmirror: InRelease and Release.gpg), served over HTTP on 127.0.0.1. The rest of the
// role is the example's web role (nginx on bookworm), so its base tree is the one TestE2EBuild
// caches in DROVER_TEST_CACHE: only the work tree, the disk and the checks are new. It boots
// nothing. It checks the package's files are in the image and its version in the manifest's
// SBOM, that the key is an input of the identity, that a refresh sees the repository's update,
// and that a wrong key, a missing Release file and an unsigned repository fail the build naming
// the repository block.
func TestE2EThirdPartyRepository(t *testing.T) {
	t.Parallel() // one build on loopback addresses of its own; no VM
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	start := time.Now()
	ctx := context.Background()
	debs := t.TempDir()
	helloDeb(t, debs, "1.0")
	m, err := testmirror.New(ctx, testmirror.Options{Dir: filepath.Join(t.TempDir(), "archive"), Debs: debs, Suite: "stable", Arch: "amd64", Date: mirrorEpoch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	srv := httptest.NewServer(unsignedHandler(m.Dir))
	t.Cleanup(srv.Close)
	t.Logf("signed repository %s/signed ready in %s", srv.URL, time.Since(start).Round(time.Millisecond))

	fleetDir := t.TempDir()
	key, err := os.ReadFile(m.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	other := otherPublicKey(t)
	keys := filepath.Join(fleetDir, "keys")
	if err := os.MkdirAll(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	writeKey := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(keys, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeKey("local.gpg", key)
	writeKey("other.gpg", other)
	role := func(name, uri, suite, key string) string {
		return fmt.Sprintf(`role %q {
  image {
    base     = "debian-bookworm"
    packages = ["nginx", "drover-hello"]
    repository "local" {
      uri   = %q
      suite = %q
      key   = %q
    }
  }
}
`, name, uri, suite, key)
	}
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	text := "drover {\n  name = \"thirdparty\"\n}\n\nbase \"debian-bookworm\" {\n  suite  = \"bookworm\"\n  mirror = \"http://deb.debian.org/debian\"\n  arch   = \"amd64\"\n}\n\n" +
		role("tools", srv.URL+"/signed", "stable", "keys/local.gpg") +
		role("wrongkey", srv.URL+"/signed", "stable", "keys/other.gpg") +
		role("nosuite", srv.URL+"/signed", "nosuch", "keys/local.gpg") +
		role("unsigned", srv.URL+"/unsigned", "stable", "keys/local.gpg")
	if err := os.WriteFile(fleetFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	drover := func(args ...string) result {
		t.Helper()
		return droverExec(t, nil, append([]string{"--fleet", fleetFile}, args...)...)
	}
	state := filepath.Join(fleetDir, ".drover")

	built := drover("build", "tools")
	if built.code != 0 {
		t.Fatalf("drover build tools: exit %d\n%s", built.code, built.stderr)
	}
	r := drover("--output", "json", "images", "show", "tools")
	var img images.Manifest
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &img) != nil {
		t.Fatalf("images show tools: exit %d\n%s", r.code, r.stdout)
	}
	for _, s := range img.Steps {
		if s.Name == "base tree" || s.Name == "repositories" {
			t.Logf("step %s: %.1fs", s.Name, s.Seconds)
		}
	}

	t.Run("the package's files are in the image and its version in the SBOM", func(t *testing.T) {
		if v := packageVersion(img.Packages, "drover-hello"); v != "1.0" {
			t.Errorf("the manifest's packages have drover-hello %q, want 1.0", v)
		}
		if v := packageVersion(img.Packages, "nginx"); v == "" {
			t.Error("the manifest's packages lack nginx, from the base tree")
		}
		if v := packageVersion(img.Packages, "hello"); v == "" {
			t.Error("the manifest's packages lack hello, the Debian package drover-hello depends on")
		}
		if len(img.Inputs.Repositories) != 1 || img.Inputs.Repositories[0].Key == "" || img.Inputs.Repositories[0].URI != srv.URL+"/signed" {
			t.Errorf("the manifest's inputs have repositories %+v, want the one block with its key's sha256", img.Inputs.Repositories)
		}
		root := extractRoot(t, filepath.Join(state, "images", strings.TrimPrefix(img.Identity, "sha256:"), "disk.raw"))
		if got := debugfs(t, root, "cat /usr/share/drover-hello/hello.txt"); !strings.Contains(got, "hello from the third-party repository, version 1.0") {
			t.Errorf("/usr/share/drover-hello/hello.txt in the image: %q", got)
		}
		if got := debugfs(t, root, "stat /usr/bin/hello"); !strings.Contains(got, "Type: regular") {
			t.Errorf("/usr/bin/hello (Debian's hello, a dependency) is not in the image:\n%s", got)
		}
		list := debugfs(t, root, "cat /etc/apt/sources.list.d/drover-repositories.list")
		if want := "deb [signed-by=/etc/apt/keyrings/drover-local.gpg] " + srv.URL + "/signed stable main"; !strings.Contains(list, want) {
			t.Errorf("the image's repository list lacks %q:\n%s", want, list)
		}
		if got := debugfs(t, root, "cat /etc/apt/keyrings/drover-local.gpg"); !strings.Contains(got, string(key[:32])) {
			t.Error("the image's /etc/apt/keyrings/drover-local.gpg is not the repository's key")
		}
	})

	dryRun := func(t *testing.T, args ...string) ciRole {
		t.Helper()
		r := drover(append([]string{"--output", "json", "ci", "--dry-run"}, append(args, "tools")...)...)
		var out struct{ Roles []ciRole }
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Roles) != 1 {
			t.Fatalf("drover ci --dry-run: exit %d, %v\n%s", r.code, err, r.stdout)
		}
		return out.Roles[0]
	}

	t.Run("images show names the repository", func(t *testing.T) {
		if len(img.Inputs.Repositories) == 0 {
			t.Fatal("the manifest's inputs have no repository")
		}
		r := drover("images", "show", "tools")
		if want := "repository local " + srv.URL + "/signed stable main key sha256:" + img.Inputs.Repositories[0].Key[:12]; r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("drover images show tools: exit %d, no line %q\n%s", r.code, want, r.stdout)
		}
	})

	t.Run("the key is an input of the identity", func(t *testing.T) {
		writeKey("local.gpg", append(append([]byte{}, key...), other...)) // still verifies: it holds the signing key
		changed := dryRun(t)
		writeKey("local.gpg", key)
		again := dryRun(t)
		if changed.Result != ciWouldBuild || changed.Image == img.Identity || changed.Image == "" {
			t.Errorf("with another key file: %s, image %s; want %s with an identity other than %s", changed.Result, changed.Image, ciWouldBuild, img.Identity)
		}
		if again.Result != ciUpToDate || again.Image != img.Identity {
			t.Errorf("with the key back: %s, image %s; want %s, %s", again.Result, again.Image, ciUpToDate, img.Identity)
		}
	})

	t.Run("a refresh sees the repository's update", func(t *testing.T) {
		newer, err := m.AddNewerVersion(ctx, "drover-hello", "stable")
		if err != nil {
			t.Fatal(err)
		}
		if plain := dryRun(t); plain.Result != ciUpToDate || plain.Image != img.Identity {
			t.Errorf("without --refresh: %s, image %s; want %s, %s", plain.Result, plain.Image, ciUpToDate, img.Identity)
		}
		refreshed := dryRun(t, "--refresh")
		if refreshed.Result != ciWouldBuild || refreshed.Refresh == nil || len(refreshed.Refresh.Changed) != 1 ||
			refreshed.Refresh.Changed[0] != (images.PackageChange{Name: "drover-hello", From: "1.0", To: newer}) {
			t.Errorf("with --refresh: %s, refresh %+v; want %s with drover-hello 1.0 -> %s", refreshed.Result, refreshed.Refresh, ciWouldBuild, newer)
		}
	})

	t.Run("a wrong key, a missing Release file and an unsigned repository fail naming the block", func(t *testing.T) {
		before, _ := images.OpenCatalog(state).List()
		for role, want := range map[string]string{
			"wrongkey": "InRelease is not signed by the repository's key",
			"nosuite":  "has no Release file",
			"unsigned": "the repository is not signed",
		} {
			r := drover("build", role)
			line := strings.Count(text[:strings.Index(text, fmt.Sprintf("role %q", role))], "\n") + 5
			block := fmt.Sprintf(`repository "local" (%s:%d:5)`, fleetFile, line)
			if r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, block) || !strings.Contains(r.stderr, "hint: check the repository block's uri and suite") {
				t.Errorf("drover build %s: exit %d\n%s\nwant a failure saying %q and naming %s", role, r.code, r.stderr, want, block)
			}
		}
		if after, _ := images.OpenCatalog(state).List(); len(after) != len(before) {
			t.Errorf("the catalog went from %d to %d images", len(before), len(after))
		}
	})
	t.Logf("whole test: %s (the build of tools: %s)", time.Since(start).Round(time.Second), built.elapsed.Round(time.Second))
}

func packageVersion(pkgs []images.Package, name string) string {
	for _, p := range pkgs {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}

// otherPublicKey is a fresh OpenPGP public key (binary) that signed nothing.
func otherPublicKey(t *testing.T) []byte {
	t.Helper()
	e, err := openpgp.NewEntity("someone else", "", "other@drover.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
