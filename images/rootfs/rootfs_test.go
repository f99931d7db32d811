package rootfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/store/memory"
)

func agentDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(AgentPath(dir, "amd64"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func webFleet() (*fleet.Fleet, *fleet.Role) {
	content := "<h1>hi</h1>"
	role := &fleet.Role{Name: "web", Image: fleet.Image{Base: "debian-bookworm", Builder: "debian", Packages: []string{"nginx"},
		Files: []fleet.File{{Dest: "/var/www/html/index.html", Content: &content, Mode: 0o644, Owner: "root:root"}},
		Disk:  fleet.Disk{Headroom: 25, Formats: []string{"raw", "qcow2"}}}}
	return &fleet.Fleet{Roles: []*fleet.Role{role}}, role
}

func TestUUIDFromIdentity(t *testing.T) {
	u := uuidFromIdentity("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(u) {
		t.Errorf("not a version-4 UUID: %s", u)
	}
	if u == uuidFromIdentity("sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
		t.Error("two identities gave one UUID")
	}
}

func TestNewRequest(t *testing.T) {
	f, role := webFleet()
	state := t.TempDir()
	req, err := NewRequest(f, role, Options{StateDir: state, DroverVersion: "v1", AgentDir: agentDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if req.Epoch != DefaultEpoch || req.Inputs.Epoch != DefaultEpoch.Unix() {
		t.Errorf("epoch %v", req.Epoch)
	}
	pk := strings.Join(req.Base.Packages, " ")
	if !strings.Contains(pk, "linux-image-amd64") || !strings.Contains(pk, "nginx") {
		t.Errorf("base packages %q lack the boot packages or the role's", pk)
	}
	if req.Cache.Dir != filepath.Join(state, "cache") {
		t.Errorf("cache dir %s", req.Cache.Dir)
	}

	if _, err := NewRequest(f, role, Options{StateDir: state, AgentDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "drover-boot") {
		t.Errorf("a missing agent: %v", err)
	}
	role.Image.Builder, role.Image.Arch = "rpi", "arm64" // as the fleet decodes an rpi role
	armAgents := agentDir(t)
	if err := os.WriteFile(AgentPath(armAgents, "arm64"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pi, err := NewRequest(f, role, Options{StateDir: state, AgentDir: armAgents})
	if err != nil {
		t.Fatalf("rpi builder: %v", err)
	}
	if pk := strings.Join(pi.Base.Packages, " "); !pi.Card || pi.Base.Arch != "arm64" || !strings.Contains(pk, "raspi-firmware") ||
		!strings.Contains(pk, "linux-image-arm64") || !slices.Contains(pi.Base.Components, "non-free-firmware") {
		t.Errorf("rpi request: card %v, arch %s, packages %q, components %v", pi.Card, pi.Base.Arch, pk, pi.Base.Components)
	}
	if pi.Identity() == req.Identity() || pi.Base.Key() == req.Base.Key() {
		t.Error("the rpi and debian images of one role share an identity or a base tree")
	}
	role.Image.Builder, role.Image.Arch = "debian", ""
	role.Deploy = &fleet.Deploy{Strategy: "raft"} // a Vault server's image is an image like any other
	if _, err := NewRequest(f, role, Options{StateDir: state, AgentDir: agentDir(t)}); err != nil {
		t.Errorf("vault (raft) role: %v", err)
	}
}

// TestCachedImageIsNotRebuilt puts a manifest of the request's identity in the catalog: Build must
// answer from it after the cache step alone, without any tool.
func TestCachedImageIsNotRebuilt(t *testing.T) {
	f, role := webFleet()
	state := t.TempDir()
	req, err := NewRequest(f, role, Options{StateDir: state, DroverVersion: "v1", AgentDir: agentDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	staging, err := req.Catalog.Stage(req.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if err := staging.Commit(&images.Manifest{Identity: req.Identity(), Role: "web"}); err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), req)
	if err != nil || !res.Cached || res.Manifest.Identity != req.Identity() {
		t.Fatalf("Build = %+v, %v; want the cached image", res, err)
	}
}

// TestFailureCleansStaging makes the base tree step fail (no mmdebstrap mirror at all) and checks that
// the error names the role and step and that no staging directory or image is left.
func TestFailureCleansStaging(t *testing.T) {
	f, role := webFleet()
	state := t.TempDir()
	req, err := NewRequest(f, role, Options{StateDir: state, DroverVersion: "v1", AgentDir: agentDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	req.Base.Suite = "" // rejected by the tree cache before anything runs
	req.Base.Mirror = "not a url"
	_, err = Build(context.Background(), req)
	var se *StepError
	if !errors.As(err, &se) || se.Role != "web" || se.Step != "base tree" {
		t.Fatalf("error %v, want a StepError of web's base tree step", err)
	}
	entries, _ := os.ReadDir(req.Catalog.Dir)
	if len(entries) != 0 {
		t.Errorf("the catalog holds %d entries after a failed build", len(entries))
	}
	// The log outlives the staging directory, outside the catalog, and says what failed.
	if !strings.HasPrefix(se.Log, req.Catalog.FailedLogDir()+"/web/") {
		t.Fatalf("the failed build's log is at %q, want it under %s", se.Log, req.Catalog.FailedLogDir())
	}
	if b, err := os.ReadFile(se.Log); err != nil || !strings.Contains(string(b), "error: ") {
		t.Errorf("the kept log %s: %q %v", se.Log, b, err)
	}
}

func TestPackerPrepare(t *testing.T) {
	dir := agentDir(t)
	state := t.TempDir()
	b := &Builder{}
	_, _, err := b.Prepare(map[string]interface{}{
		"role": "web", "packages": []string{"nginx"}, "state_dir": state, "agent_dir": dir,
		"file": []map[string]interface{}{{"dest": "/etc/motd", "content": "hello", "mode": "0600"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.req.Role != "web" || len(b.req.Files) != 1 || b.req.Files[0].Mode != 0o600 || !strings.HasPrefix(b.req.Identity(), "sha256:") {
		t.Errorf("request %+v", b.req)
	}
	if spec := b.ConfigSpec(); spec["role"] == nil || spec["file"] == nil {
		t.Error("the HCL2 spec lacks role or file")
	}
	if _, _, err := (&Builder{}).Prepare(map[string]interface{}{"state_dir": state, "agent_dir": dir}); err == nil {
		t.Error("a config without role prepared")
	}
	if n := len(b.req.Base.Sources()); n != 3 || b.req.Base.NoUpdates {
		t.Errorf("a Packer source gets %d apt sources, want the suite, -updates and -security", n)
	}
	if _, _, err := (&Builder{}).Prepare(map[string]interface{}{"role": "web", "state_dir": state, "agent_dir": dir, "updates": false}); err == nil ||
		!strings.Contains(err.Error(), "updates = false needs updates_off_reason") {
		t.Errorf("updates = false without a reason: %v", err)
	}
	on, off := &Builder{}, &Builder{}
	if _, _, err := on.Prepare(map[string]interface{}{"role": "web", "state_dir": state, "agent_dir": dir}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := off.Prepare(map[string]interface{}{"role": "web", "state_dir": state, "agent_dir": dir, "updates": false,
		"updates_off_reason": "frozen"}); err != nil || !off.req.Base.NoUpdates || off.req.Identity() == on.req.Identity() {
		t.Errorf("updates off with a reason: %v, spec %+v", err, off.req.Base)
	}
}

func TestIdentifierMatchesTheBuildRequest(t *testing.T) {
	f, role := webFleet()
	opts := Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: agentDir(t), Epoch: time.Unix(1700000000, 0)}
	req, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	id := NewIdentifier(opts)
	got, err := id.Identity(f, role)
	if err != nil || got != req.Identity() {
		t.Fatalf("Identity = %s %v, want the build request's %s", got, err, req.Identity())
	}
	// The agent is hashed once: a changed agent is only seen by a new Identifier.
	if err := os.WriteFile(AgentPath(opts.AgentDir, "amd64"), []byte("#!/bin/sh\necho new\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if again, _ := id.Identity(f, role); again != got {
		t.Errorf("the same Identifier gave %s, then %s", got, again)
	}
	if fresh, _ := NewIdentifier(opts).Identity(f, role); fresh == got {
		t.Error("a new agent kept the identity")
	}
	content := "<h1>changed</h1>"
	role.Image.Files[0].Content = &content
	if changed, _ := id.Identity(f, role); changed == got {
		t.Error("a changed file kept the identity")
	}
}

// An arm64 role's request builds an arm64 base (through qemu-user binfmt on an amd64 host: see the
// tree package's TestE2EArm64Base) with arm64 boot packages and bakes the arm64 agent.
func TestArm64RoleRequest(t *testing.T) {
	f, role := webFleet()
	role.Image.Arch = "arm64"
	dir := agentDir(t)
	if err := os.WriteFile(AgentPath(dir, "arm64"), []byte("#!/bin/sh\n# arm64\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	req, err := NewRequest(f, role, Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if req.Base.Arch != "arm64" || !slices.Contains(req.Base.Packages, "linux-image-arm64") || slices.Contains(req.Base.Packages, "linux-image-amd64") {
		t.Errorf("base spec %+v, want arm64 with arm64 boot packages", req.Base)
	}
	if req.Agent != AgentPath(dir, "arm64") {
		t.Errorf("agent %s, want the arm64 one", req.Agent)
	}
	amd, _ := webFleet()
	amdReq, err := NewRequest(amd, amd.Roles[0], Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if amdReq.Base.Key() == req.Base.Key() || amdReq.Identity() == req.Identity() {
		t.Error("the arm64 role shares the amd64 role's base tree key or identity")
	}
}

// TestRequestSources: a role's base installs from the suite, SUITE-updates and SUITE-security by
// default; the inputs (so the identity and the manifest) name them, and turning updates off or
// moving the security archive makes another image.
func TestRequestSources(t *testing.T) {
	f, role := webFleet()
	opts := Options{StateDir: t.TempDir(), DroverVersion: "v1", AgentDir: agentDir(t)}
	req, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []images.Source{{URL: "http://deb.debian.org/debian", Suite: "bookworm"}, {URL: "http://deb.debian.org/debian", Suite: "bookworm-updates"},
		{URL: "http://deb.debian.org/debian-security", Suite: "bookworm-security"}}
	if !slices.Equal(req.Inputs.Base.Sources, want) {
		t.Errorf("sources %v, want %v", req.Inputs.Base.Sources, want)
	}
	base := fleet.DefaultBase()
	base.SecurityMirror = "http://security.lan/debian-security"
	f.Bases = []*fleet.Base{base}
	moved, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Identity() == req.Identity() || moved.Inputs.Base.Sources[2].URL != base.SecurityMirror || moved.Base.Key() == req.Base.Key() {
		t.Errorf("another security archive: identity %s, sources %v", moved.Identity(), moved.Inputs.Base.Sources)
	}
	base.SecurityMirror, base.UpdatesOff, base.UpdatesOffReason = "", true, "frozen for the demo"
	off, err := NewRequest(f, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	if off.Identity() == req.Identity() || len(off.Inputs.Base.Sources) != 1 || off.Inputs.Base.UpdatesOffReason != "frozen for the demo" || !off.Base.NoUpdates {
		t.Errorf("updates off: identity %s, inputs %+v", off.Identity(), off.Inputs.Base)
	}
}

// TestSharedImageIsNotRebuilt: with a shared state store, an image another machine built and
// published on every compute the role deploys to is not built here; one whose compute boots the
// local disk (nothing published there) is; and a local cache hit is recorded in the store.
func TestSharedImageIsNotRebuilt(t *testing.T) {
	f, role := webFleet()
	role.Deploy = &fleet.Deploy{Compute: "cloud"}
	st := memory.New()
	ctx := context.Background()
	optsOf := func(state string) Options {
		return Options{StateDir: state, DroverVersion: "v1", AgentDir: agentDir(t), Store: st, Context: ctx}
	}
	// Machine A has it on its disk only (built before the store was shared): its cache hit records it.
	a, err := NewRequest(f, role, optsOf(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	staging, err := a.Catalog.Stage(a.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if err := staging.Commit(&images.Manifest{Identity: a.Identity(), Role: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, images.SharedManifestPrefix+strings.TrimPrefix(a.Identity(), "sha256:"), 0); err != nil {
		t.Fatal(err) // A's commit recorded it: forget it, as a store shared after the build would not have it
	}
	if res, err := Build(ctx, a); err != nil || !res.Cached || res.Elsewhere {
		t.Fatalf("A's build = %+v, %v; want its own cached image", res, err)
	}
	if _, err := st.Get(ctx, images.SharedManifestPrefix+strings.TrimPrefix(a.Identity(), "sha256:")); err != nil {
		t.Fatalf("A's cache hit did not record the manifest in the store: %v", err)
	}

	// B, before A published it: not covered, so B builds.
	b, err := NewRequest(f, role, optsOf(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if b.Identity() != a.Identity() || !slices.Equal(b.Deploys, []string{"cloud"}) {
		t.Fatalf("B's request: identity %s, deploys %v", b.Identity(), b.Deploys)
	}
	if _, ok, err := b.Cached(); ok || err != nil {
		t.Fatalf("B's cache before the image was published: %v, %v; want a build", ok, err)
	}
	if err := a.Catalog.RecordPublished(a.Identity(), images.PublishedRef{Compute: "cloud", Type: "aws", ID: "ami-1"}); err != nil {
		t.Fatal(err)
	}
	res, err := Build(ctx, b)
	if err != nil || !res.Cached || !res.Elsewhere || res.Manifest.Identity != a.Identity() || b.Catalog.Has(b.Identity()) {
		t.Fatalf("B's build = %+v, %v; want the store's image, not built", res, err)
	}
	b.Force = true
	if _, ok, _ := b.Cached(); ok {
		t.Error("--force was answered from the store")
	}

	// Deployed on a compute that boots the disk: nothing is published there, so it is built here.
	role.Deploy = &fleet.Deploy{Compute: "lab"}
	c, err := NewRequest(f, role, optsOf(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Cached(); ok || err != nil {
		t.Errorf("a role on lab: cached %v, %v; want a build where the disk is needed", ok, err)
	}
}

// Every card of a role has the same MBR disk identifier, whatever the image: an update writes a
// slot's cmdline.txt, which names its root as DISKID-0N, onto a card written from another image.
func TestCardDiskIDIsTheRoles(t *testing.T) {
	pi := cardDiskID("pi")
	if len(pi) != 8 || strings.Trim(pi, "0123456789abcdef") != "" {
		t.Fatalf("cardDiskID(pi) = %q, want 8 hex digits", pi)
	}
	if cardDiskID("pi") != pi || cardDiskID("web") == pi {
		t.Errorf("cardDiskID: pi %q again %q, web %q; want the role's alone", pi, cardDiskID("pi"), cardDiskID("web"))
	}
}
