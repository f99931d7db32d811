package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/plugins/store/etcd/etcdtest"
	"github.com/drover-dev/drover/rollout"
)

// drover state migrate: a machine's local state (rollout records, catalog manifests, published
// copies) into etcd: a dry run writes nothing, a run copies, a rerun changes nothing, another machine
// then sees it all; a record the store has newer is kept, and a record that differs without saying
// which is newer is a conflict (exit 1), left alone.
func TestTeamStateMigrate(t *testing.T) {
	url := etcdtest.Start(t)
	cloud := memory.NewCloud("mem-1")
	extra := teamProviders(cloud)
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(fleetFile, []byte(memcloudFleet), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	web := seedRawImage(t, state, 64<<10, 0)
	local := func(args ...string) (int, string, string) {
		return droverWith(t, extra, append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	}
	for _, args := range [][]string{{"rollout", "start", "--image", web.Identity, "web"}, {"rollout", "promote", "web"}} {
		if code, stdout, stderr := local(args...); code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	b := newTeamMachine(t, url, "team/", "runner b", extra)
	st := b.store()
	migrate := func(extraArgs ...string) (int, string, string) {
		return local(append([]string{"state", "migrate", "--to", url, "--prefix", "team/"}, extraArgs...)...)
	}
	hexID := strings.TrimPrefix(web.Identity, "sha256:")

	code, stdout, stderr := migrate("--dry-run")
	if code != exitOK || !strings.Contains(stdout, "(dry run: nothing is written)") || !hasLine(stdout, "copied ", "rollouts/web/") ||
		!hasLine(stdout, "copied ", "catalog/manifests/"+hexID) || !hasLine(stdout, "copied ", "catalog/published/"+hexID) {
		t.Fatalf("migrate --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if items, err := st.List(t.Context(), ""); err != nil || len(items) != 0 {
		t.Fatalf("after a dry run the store holds %d keys (%v), want none", len(items), err)
	}
	code, stdout, stderr = migrate()
	if code != exitOK || !hasLine(stdout, "copied ", "rollouts/web/") || !strings.Contains(stdout, "done: ") || strings.Contains(stdout, " 0 copied") {
		t.Fatalf("migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = migrate()
	if code != exitOK || !strings.Contains(stdout, "done: 0 copied, 0 updated, ") || !strings.Contains(stdout, ", 0 kept, 0 conflict\n") {
		t.Fatalf("migrate again (idempotent): exit %d\n%s%s", code, stdout, stderr)
	}

	// Machine B, with an empty state dir and the etcd store, sees the rollout and the image.
	code, stdout, stderr = b.drover("rollout", "status", "web")
	if code != exitOK || !strings.Contains(stdout, web.ShortID()) {
		t.Errorf("B: rollout status after the migration: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = b.drover("images", "list")
	if code != exitOK || !strings.Contains(stdout, web.ShortID()+"*") || !strings.Contains(stdout, "cloud/mem-1") {
		t.Errorf("B: images list after the migration: exit %d\n%s%s", code, stdout, stderr)
	}

	// The store's record becomes newer (B acted on it): the local one does not overwrite it.
	items, err := st.List(t.Context(), "rollouts/web/")
	if err != nil || len(items) != 1 {
		t.Fatalf("rollouts in the store: %v, %v", items, err)
	}
	newer := bytes.Replace(items[0].Value, []byte(`"updated": "`), []byte(`"updated": "2099-01-01T00:00:00Z", "x_old_updated": "`), 1)
	if bytes.Equal(newer, items[0].Value) {
		newer = bytes.Replace(items[0].Value, []byte(`"updated":"`), []byte(`"updated":"2099-01-01T00:00:00Z","x_old_updated":"`), 1)
	}
	if _, err := st.Put(t.Context(), items[0].Key, newer, items[0].Version); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = migrate()
	if code != exitOK || !hasLine(stdout, "kept ", items[0].Key, "the destination's is newer (updated 2099-01-01T00:00:00Z") {
		t.Fatalf("migrate over a newer record: exit %d\n%s%s", code, stdout, stderr)
	}
	if it, _ := st.Get(t.Context(), items[0].Key); !bytes.Equal(it.Value, newer) {
		t.Error("the store's newer record was overwritten")
	}

	// An in-use mark that differs says nothing of which is newer: a conflict, left alone, exit 1.
	marks, err := st.List(t.Context(), "images/in-use/")
	if err != nil || len(marks) != 1 {
		t.Fatalf("in-use marks in the store: %v, %v", marks, err)
	}
	if _, err := st.Put(t.Context(), marks[0].Key, []byte(`{"identity":"`+web.Identity+`","role":"web","rollouts":["other"]}`), marks[0].Version); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = migrate()
	if code != exitFailure || !hasLine(stdout, "conflict ", marks[0].Key, "only rollout records say which is newer") || !strings.Contains(stderr, "1 record(s) differ in the store") {
		t.Fatalf("migrate over a differing mark: exit %d\n%s%s", code, stdout, stderr)
	}
}

// drover build on a machine with an empty disk: web's image, built on another machine and published
// on cloud (where web deploys), is not built again; the line says so.
func TestTeamStateBuildSkipsWhatTheStoreCovers(t *testing.T) {
	url := etcdtest.Start(t)
	extra := teamProviders(memory.NewCloud("mem-1"))
	b := newTeamMachine(t, url, "team/", "runner b", extra)
	agents := t.TempDir()
	if err := os.WriteFile(filepath.Join(agents, "drover-boot-linux-amd64"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.env["DROVER_BOOT_DIR"] = agents
	a := newTeamMachine(t, url, "team/", "runner a", extra)
	a.env["DROVER_BOOT_DIR"] = agents

	// The identity drover build computes for web, as a rollout without --image does.
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{}, func(k string) (string, bool) { v, ok := a.env[k]; return v, ok })
	app.extraProviders = extra
	f, diags := fleet.Load(a.fleet, fleet.Options{Providers: app.registry(), Deploy: rollout.NewCatalog(nil, nil), LookupEnv: app.env})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	identity, err := app.currentImage(f, a.state)("web")
	if err != nil || identity == "" {
		t.Fatalf("web's identity: %q, %v", identity, err)
	}
	// Machine A built it (its manifest committed through a shared catalog) and published it on cloud.
	cat := images.OpenCatalog(a.state).Share(t.Context(), a.store())
	staging, err := cat.Stage(identity)
	if err != nil {
		t.Fatal(err)
	}
	if err := staging.Commit(&images.Manifest{Identity: identity, Role: "web", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := cat.RecordPublished(identity, images.PublishedRef{Compute: "cloud", Type: "memcloud", Region: "mem-1", ID: "img-1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := b.drover("build", "web")
	if code != exitOK || stdout != "web: up to date ("+identity+", built elsewhere and published on cloud: the state store records it)\n" {
		t.Fatalf("B: build web: exit %d\n%s%s", code, stdout, stderr)
	}
	if images.OpenCatalog(b.state).Has(identity) {
		t.Error("B's disk cache has the image it did not build")
	}
	code, stdout, _ = b.drover("--output", "json", "build", "web")
	if code != exitOK || !strings.Contains(stdout, `"cached":true,"elsewhere":true`) {
		t.Errorf("B: build --output json: exit %d\n%s", code, stdout)
	}
}

// hasLine reports whether a line of out starts with prefix and contains every one of parts.
func hasLine(out, prefix string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}
