//go:build e2e && lab

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/rollout"
)

// TestE2EVultr runs the example's web role on the cloud lab's Vultr end to end, with the real
// drover binary and govultr against the fake API v2: build, publish (the raw disk uploaded to the
// S3 lab standing in for Vultr Object Storage, a snapshot made from its presigned URL, the object
// deleted), launch (the fake boots its copy of the snapshot under qemu with Vultr's hardware,
// DHCP and metadata service), health, promote (the reserved IP detached from blue and attached to
// green under a request loop), rollback, drover killed with SIGKILL right after every transition
// and run again, and prune deleting the snapshots it no longer needs. Nothing is left behind: no
// instance or snapshot drover does not account for, no object in the bucket.
func TestE2EVultr(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores: takeLane gives GOMAXPROCS lanes), on addresses of its own (127.0.142.0/24).
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	start := time.Now()
	store := s3lab.New(t, s3lab.Options{})
	cloud := vultrlab.New(t, vultrlab.Options{
		Ports:        []int{80},
		AddressRange: netip.MustParsePrefix("127.0.142.0/24"),
		Hypervisor:   vultrlab.QEMU{Memory: 512, CPUs: 1},
	})
	rip := reserveIP(t, cloud)

	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	editFleet(t, fleetFile, `store "local" {}`, `store "local" {}

compute "vultr" "cloud" {
  region           = "`+cloud.Region()+`"
  plan             = "vc2-1c-1gb"
  storage_endpoint = "`+store.URL+`"
  bucket           = "drover-images"
}

ip "vultr" "rip" {
  address = "`+rip.String()+`"
  compute = "cloud"
}`)
	editFleet(t, fleetFile, `    compute = "lab"
    count   = 2`, `    compute = "cloud"
    count   = 1`)
	editFleet(t, fleetFile, `cutover "ip" {
      ip   = "front"
      dns  = "home"
      name = "www"
      ttl  = 60
    }`, `cutover "ip" {
      ip = "rip"
    }`)
	editFleet(t, fleetFile, `watch    = var.watch`, `watch    = "5s"`)
	env := []string{
		"VULTR_API_KEY=" + cloud.APIKey(), "VULTR_API_URL=" + cloud.URL(),
		"VULTR_OBJECT_STORAGE_ACCESS_KEY=" + store.AccessKeyID, "VULTR_OBJECT_STORAGE_SECRET_KEY=" + store.SecretAccessKey,
		"VULTR_OBJECT_STORAGE_PATH_STYLE=true",
	}
	drover := func(t *testing.T, args ...string) result {
		t.Helper()
		return droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := drover(t, args...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
	}
	stream := func(t *testing.T, args ...string) *streamed {
		return droverStream(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	page := func(t *testing.T, v string) images.Manifest {
		t.Helper()
		writeFile(t, filepath.Join(fleetDir, "web/index.html"), "<h1>web on vultr "+v+"</h1>\n")
		must(t, "build", "web")
		var m images.Manifest
		if r := must(t, "--output", "json", "images", "show", "web"); json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("images show web: %s", r.stdout)
		}
		return m
	}
	serves := func(t *testing.T, want string) {
		t.Helper()
		if got := get(t, "http://"+rip.String()+"/"); !strings.Contains(got, want) {
			t.Fatalf("the reserved IP %s answers %q, want %q", rip, got, want)
		}
	}
	// accounted checks the cloud against drover: every instance is one a rollout owns, every
	// snapshot one the catalog records as published, and the bucket is empty.
	accounted := func(t *testing.T) string {
		t.Helper()
		var status struct {
			Instances []statusInstance `json:"instances"`
		}
		if r := must(t, "--output", "json", "rollout", "status", "web"); json.Unmarshal([]byte(r.stdout), &status) != nil {
			t.Fatalf("rollout status: %s", r.stdout)
		}
		for _, in := range cloud.Instances() {
			if !slices.ContainsFunc(status.Instances, func(s statusInstance) bool { return s.ID == in.ID && s.Owned }) {
				t.Errorf("instance %s (%s/%s) is in the cloud, owned by no rollout", in.ID, in.Status, in.PowerStatus)
			}
		}
		published := map[string]bool{}
		cat := images.OpenCatalog(filepath.Join(fleetDir, ".drover"))
		list, _ := cat.List()
		for _, m := range list {
			refs, _ := cat.Published(m.Identity)
			for _, r := range refs {
				published[r.ID] = true
			}
		}
		for _, s := range cloud.Snapshots() {
			if !published[s.ID] {
				t.Errorf("snapshot %s (%s, %s) is in the cloud, recorded by no catalog image", s.ID, s.Status, s.Description)
			}
		}
		if left := store.Leftovers(); len(left) > 0 {
			t.Errorf("the bucket holds %v", left)
		}
		return fmt.Sprintf("%d instance(s), %d snapshot(s), %d object(s)", len(cloud.Instances()), len(cloud.Snapshots()), len(store.Leftovers()))
	}

	var table []string
	row := func(format string, args ...any) { table = append(table, fmt.Sprintf(format, args...)) }
	defer func() {
		t.Logf("MEASURE web on the cloud lab's Vultr (wall time %s):\n%s", time.Since(start).Round(time.Second), strings.Join(table, "\n"))
	}()

	t.Run("build, publish, launch, health, promote: the reserved IP serves the new instance", func(t *testing.T) {
		web := page(t, "1")
		s := stream(t, "rollout", "start", "web")
		var events []rollout.Event
		for e := range s.events {
			events = append(events, e)
			t.Log(e.String())
		}
		r := <-s.done
		if r.code != 0 {
			t.Fatalf("rollout start: exit %d\n%s", r.code, r.stderr)
		}
		raw := filepath.Join(fleetDir, ".drover", "images", strings.TrimPrefix(web.Identity, "sha256:"), "disk.raw")
		inUse, length := bytesInUse(t, raw)
		sent := int64(0)
		for _, s := range cloud.Snapshots() {
			sent += s.Size
		}
		row("publish of web: %d bytes uploaded (raw, as Vultr takes it) for %d bytes in use (%.2f), a %d-byte disk; %d UploadPart requests",
			sent, inUse, float64(sent)/float64(inUse), length, store.Count("UploadPart"))
		if n := len(cloud.Snapshots()); n != 1 {
			t.Errorf("%d snapshots after the first rollout, want 1", n)
		}
		for _, s := range cloud.Snapshots() {
			if !s.UEFI || s.Description != "drover-image "+web.Identity {
				t.Errorf("snapshot %s: uefi %v, description %q", s.ID, s.UEFI, s.Description)
			}
		}
		row("rollout start (publish, launch, boot, health): %s; %s", r.elapsed.Round(100*time.Millisecond), overhead(events))
		must(t, "rollout", "promote", "web")
		serves(t, "web on vultr 1")
		// The guest's serial console, as Vultr's web console shows it: the kernel, and drover-boot
		// asking Vultr's metadata service for user-data (GET /latest/user-data, no token) and
		// reaching it: web has no secrets, so drover hands it none and the service answers 404.
		for _, in := range cloud.Instances() {
			var console string
			for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
				if console = string(cloud.Console(in.ID)); strings.Contains(console, "no secrets to fetch") {
					break
				}
			}
			for _, want := range []string{"Linux version", "console=ttyS0", "no secrets to fetch", "the metadata service http://169.254.169.254)"} {
				if !strings.Contains(console, want) {
					t.Errorf("the console of %s lacks %q; it ends:\n%s", in.ID, want, tail(console, 30))
				}
			}
		}
		row("after the first rollout: %s", accounted(t))
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("a second rollout moves the reserved IP under a request loop, and rollback moves it back", func(t *testing.T) {
		page(t, "2")
		must(t, "rollout", "start", "web")
		loop := startRequestLoop("http://"+rip.String()+"/", 50*time.Millisecond)
		t0 := time.Now()
		must(t, "rollout", "promote", "web")
		t1 := time.Now()
		res := loop.stop()
		serves(t, "web on vultr 2")
		row("promote under a request loop (50 ms): %d answered, %d failed, longest gap across the detach-attach %s, answers %v",
			res.ok, res.failed, res.gapAround(t0, t1).Round(time.Millisecond), sortedKeys(res.bodies))
		loop = startRequestLoop("http://"+rip.String()+"/", 50*time.Millisecond)
		t0 = time.Now()
		rb := must(t, "rollout", "rollback", "web")
		t1 = time.Now()
		res = loop.stop()
		serves(t, "web on vultr 1")
		row("rollback in %s: %d answered, %d failed, longest gap %s", rb.elapsed.Round(time.Millisecond), res.ok, res.failed, res.gapAround(t0, t1).Round(time.Millisecond))
		row("after the rollback: %s", accounted(t))
	})

	t.Run("drover killed with SIGKILL right after each transition converges when run again", func(t *testing.T) {
		page(t, "3")
		killAfterEachTransition(t, stream, drover, func(cmd string, points []rollout.State, r result) {
			row("%-8s killed after each of %v, rerun: exit %d in %s; %s", cmd, points, r.code, r.elapsed.Round(time.Millisecond), accounted(t))
		})
		serves(t, "web on vultr 1")
	})

	t.Run("prune deletes the snapshots of images no rollout uses", func(t *testing.T) {
		before := len(cloud.Snapshots())
		r := must(t, "images", "prune", "--keep", "1")
		row("images prune --keep 1: snapshots %d -> %d; %s", before, len(cloud.Snapshots()), accounted(t))
		if len(cloud.Snapshots()) >= before {
			t.Errorf("prune left %d of %d snapshots\n%s", len(cloud.Snapshots()), before, r.stdout)
		}
		serves(t, "web on vultr 1")
	})
}
