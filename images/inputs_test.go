package images

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
)

func testFleet(t *testing.T) (*fleet.Fleet, *fleet.Role, string) {
	t.Helper()
	dir := t.TempDir()
	page := filepath.Join(dir, "index.html")
	if err := os.WriteFile(page, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	role := &fleet.Role{Name: "web", Image: fleet.Image{Base: "debian-bookworm", Builder: "debian",
		Packages: []string{"nginx", "curl", "nginx"},
		Files:    []fleet.File{{Dest: "/var/www/html/index.html", Source: page, Mode: 0o644, Owner: "root:root"}}}}
	return &fleet.Fleet{Dir: dir, Roles: []*fleet.Role{role}}, role, page
}

func TestIdentityFollowsContentNotMetadata(t *testing.T) {
	f, role, page := testFleet(t)
	in, err := ComputeInputs(f, role, "v0.1.0", "agentsum")
	if err != nil {
		t.Fatal(err)
	}
	id1 := in.Identity()
	if len(id1) != len("sha256:")+64 {
		t.Fatalf("identity %q", id1)
	}
	if in.Base.Suite != "bookworm" || in.Base.Arch != "amd64" || len(in.Packages) != 2 || in.Packages[0] != "curl" {
		t.Errorf("normalized inputs: %+v", in)
	}

	// Touching the file or reordering packages changes nothing.
	if err := os.Chtimes(page, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	role.Image.Packages = []string{"curl", "nginx"}
	if in2, _ := ComputeInputs(f, role, "v0.1.0", "agentsum"); in2.Identity() != id1 {
		t.Error("mtime or package order changed the identity")
	}
	// Content, drover's version and the agent do.
	for name, change := range map[string]func(){
		"file content": func() { _ = os.WriteFile(page, []byte("v2"), 0o644) },
		"version":      func() {},
	} {
		change()
		version := "v0.1.0"
		if name == "version" {
			version = "v0.2.0"
		}
		in3, err := ComputeInputs(f, role, version, "agentsum")
		if err != nil {
			t.Fatal(err)
		}
		if in3.Identity() == id1 {
			t.Errorf("changing the %s kept the identity", name)
		}
	}
	if in4, _ := ComputeInputs(f, role, "v0.1.0", "othersum"); in4.Identity() == id1 {
		t.Error("a new agent kept the identity")
	}
}

func TestMissingFileIsAnError(t *testing.T) {
	f, role, page := testFleet(t)
	_ = os.Remove(page)
	if _, err := ComputeInputs(f, role, "v", "a"); err == nil {
		t.Fatal("a deleted file gave no error")
	}
}

// A file made by another command that is not made yet fails the role's build and says what makes it.
func TestFileNotMadeYet(t *testing.T) {
	f, role, _ := testFleet(t)
	bin := filepath.Join(f.Dir, "bin", "vault")
	role.Image.Files = append(role.Image.Files, fleet.File{Dest: "/usr/local/bin/vault", Source: bin, Mode: 0o755, MadeBy: "go tool task vault"})
	_, err := ComputeInputs(f, role, "v", "a")
	var nm *NotMadeError
	if err == nil || !strings.Contains(err.Error(), `role "web", file /usr/local/bin/vault: `+bin+` is not made yet (go tool task vault makes it)`) ||
		!errors.As(err, &nm) || nm.MadeBy != "go tool task vault" {
		t.Fatalf("err = %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("server"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ComputeInputs(f, role, "v", "a"); err != nil {
		t.Fatalf("once made: %v", err)
	}
}

func TestUnknownBaseIsAnError(t *testing.T) {
	f, role, _ := testFleet(t)
	role.Image.Base = "alpine"
	if _, err := ResolveBase(f, role); err == nil {
		t.Fatal("an undeclared base resolved")
	}
}

// A role that installs its own NTP daemon gets it instead of systemd-timesyncd, which conflicts with
// it in Debian; every other role gets timesyncd with the boot packages.
func TestImagePackagesLeaveTimesyncdToAnotherNTPDaemon(t *testing.T) {
	got := ImagePackages("amd64", []string{"curl"}, []string{"nginx"})
	if !slices.Contains(got, "systemd-timesyncd") || !slices.Contains(got, "curl") || !slices.Contains(got, "nginx") {
		t.Errorf("packages %v: want the boot packages with systemd-timesyncd, curl and nginx", got)
	}
	for _, daemon := range []string{"chrony", "ntpsec"} {
		for _, pkgs := range [][2][]string{{nil, {daemon}}, {{daemon}, nil}} {
			got := ImagePackages("amd64", pkgs[0], pkgs[1])
			if slices.Contains(got, "systemd-timesyncd") || !slices.Contains(got, daemon) {
				t.Errorf("base %v, role %v: packages %v, want %s and no systemd-timesyncd", pkgs[0], pkgs[1], got, daemon)
			}
		}
	}
	if boot := BootPackages("amd64"); !slices.Contains(boot, "systemd-timesyncd") {
		t.Errorf("ImagePackages changed BootPackages' list: %v", boot)
	}
}
