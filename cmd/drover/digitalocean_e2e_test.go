//go:build e2e && lab

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
	"github.com/drover-dev/drover/rollout"
)

// TestE2EDigitalOcean runs the homelab example's web role on the cloud lab's DigitalOcean end to
// end, with the real drover binary and godo against the fake API v2, and the S3 client against
// the lab's Spaces: build, publish (the raw disk gzip-compressed to Spaces, imported as a custom
// image from a presigned URL, the object deleted), launch (the fake boots the image under qemu as
// a droplet: virtio disk, legacy BIOS, no DHCP address where its ports go, so they answer only if
// drover-boot configured the address the metadata gives), health, promote (the reserved IP moves
// in one assign action under a request loop), rollback, the droplet's secret from a real Vault
// through its wrapped SecretID, drover killed with SIGKILL right after every transition and run
// again, and prune deleting the images it no longer needs. Nothing is left behind: no droplet,
// image or Spaces object that drover does not account for.
func TestE2EDigitalOcean(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores: takeLane gives GOMAXPROCS lanes), on addresses of its own (127.0.144.0/24).
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	start := time.Now()
	srv, root, controllerToken := startLabVault(t)
	password := randomPassword(t)
	mustWrite(t, root, "kv/data/web/app", map[string]any{"data": map[string]any{"password": password}})

	vaultPort := netip.MustParseAddrPort(strings.TrimPrefix(srv.Addr, "http://"))
	vaultInVPC := netip.MustParseAddrPort("169.254.169.100:" + fmt.Sprint(vaultPort.Port()))
	cloud := dolab.New(t, dolab.Options{
		Ports:        []int{80},
		AddressRange: netip.MustParsePrefix("127.0.144.0/24"), // TestE2EAWS has .141, TestE2EVultr .142
		Hypervisor:   dolab.QEMU{Memory: 512, CPUs: 1},
		Routes:       map[netip.AddrPort]netip.AddrPort{vaultInVPC: vaultPort},
	})
	spaces := s3lab.New(t, s3lab.Options{})
	rip := cloud.CreateReservedIP()

	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	editFleet(t, fleetFile, `store "local" {}`, `store "local" {}

compute "digitalocean" "cloud" {
  region            = "`+cloud.Region()+`"
  size              = "s-1vcpu-1gb"
  api_url           = "`+cloud.URL()+`"
  spaces_bucket     = "drover-images"
  spaces_endpoint   = "`+spaces.URL+`"
  spaces_path_style = true
}

ip "digitalocean" "rip" {
  address = "`+rip.String()+`"
  compute = "cloud"
}`)
	editFleet(t, fleetFile, `address = "http://127.0.0.1:8200"`, `address          = "`+srv.Addr+`"
  instance_address = "http://`+vaultInVPC.String()+`"`)
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
	editFleet(t, fleetFile, `run     = ["systemctl enable nginx"]`, `run     = ["systemctl enable nginx"]
    secret "htpasswd" {
      path     = "kv/data/web/app"
      template = "web/htpasswd.tmpl"
      owner    = "root:www-data"
      mode     = "0440"
    }
    services = ["nginx"]`)
	writeFile(t, filepath.Join(fleetDir, "web/htpasswd.tmpl"), "admin:{PLAIN}{{ .password }}\n")
	writeFile(t, filepath.Join(fleetDir, "web/site.conf"), `server {
    listen 80 default_server;
    root /var/www/html;
    location / { try_files $uri $uri/ =404; }
    location /private/ {
        auth_basic           "drover";
        auth_basic_user_file /run/drover/secrets/htpasswd;
        alias /var/www/html/;
    }
}
`)
	env := []string{"DIGITALOCEAN_TOKEN=" + cloud.Token(), "SPACES_ACCESS_KEY_ID=" + spaces.AccessKeyID,
		"SPACES_SECRET_ACCESS_KEY=" + spaces.SecretAccessKey, "VAULT_TOKEN=" + controllerToken}
	drover := func(t *testing.T, args ...string) result {
		t.Helper()
		return droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := drover(t, args...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d\n%s", args, r.code, r.stderr)
		}
		return r
	}
	stream := func(t *testing.T, args ...string) *streamed {
		return droverStream(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	page := func(t *testing.T, v string) images.Manifest {
		t.Helper()
		writeFile(t, filepath.Join(fleetDir, "web/index.html"), "<h1>web on digitalocean "+v+"</h1>\n")
		if r := droverExec(t, append(env, "DROVER_SCAN_VAULT_TOKEN="+srv.RootToken), "--fleet", fleetFile, "build", "web"); r.code != 0 {
			t.Fatalf("drover build web: exit %d", r.code)
		}
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
	// accounted checks the cloud against drover: every droplet is one a rollout owns, every
	// custom image is one the catalog records as published, and Spaces holds nothing.
	accounted := func(t *testing.T) string {
		t.Helper()
		var status struct {
			Instances []statusInstance `json:"instances"`
		}
		if r := must(t, "--output", "json", "rollout", "status", "web"); json.Unmarshal([]byte(r.stdout), &status) != nil {
			t.Fatalf("rollout status: %s", r.stdout)
		}
		for _, d := range cloud.Droplets() {
			if !slices.ContainsFunc(status.Instances, func(s statusInstance) bool { return s.ID == strconv.Itoa(d.ID) && s.Owned }) {
				t.Errorf("droplet %d (%s) exists, owned by no rollout", d.ID, d.Status)
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
		for _, im := range cloud.Images() {
			if !published[strconv.Itoa(im.ID)] {
				t.Errorf("image %d (%s, %s) is in the cloud, recorded by no catalog image", im.ID, im.Name, im.Status)
			}
		}
		objs, ups := spaces.Objects("drover-images"), spaces.Uploads("drover-images")
		if len(objs) != 0 || len(ups) != 0 {
			t.Errorf("Spaces holds objects %+v and unfinished uploads %+v", objs, ups)
		}
		return fmt.Sprintf("%d droplet(s), %d image(s), %d Spaces object(s)", len(cloud.Droplets()), len(cloud.Images()), len(objs)+len(ups))
	}

	var table []string
	row := func(format string, args ...any) { table = append(table, fmt.Sprintf(format, args...)) }
	defer func() {
		t.Logf("MEASURE web on the cloud lab's DigitalOcean (wall time %s):\n%s", time.Since(start).Round(time.Second), strings.Join(table, "\n"))
	}()

	t.Run("build, publish, launch, health, promote: the reserved IP serves the new droplet", func(t *testing.T) {
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
		sent := cloud.BytesDownloaded()
		row("publish of web: %d bytes uploaded (gzip) and imported, %.3f of the %d bytes in use, %.3f of the %d-byte disk", sent, float64(sent)/float64(inUse), inUse, float64(sent)/float64(length), length)
		if sent > inUse {
			t.Errorf("the publish sent %d bytes, more than the %d bytes in use of the raw disk", sent, inUse)
		}
		if imgs := cloud.Images(); len(imgs) != 1 || imgs[0].Status != "available" {
			t.Errorf("images after the first rollout: %+v, want one available", imgs)
		}
		row("rollout start (publish, launch, boot, health): %s; %s", r.elapsed.Round(100*time.Millisecond), overhead(events))
		must(t, "rollout", "promote", "web")
		serves(t, "web on digitalocean 1")
		if got := get(t, "http://admin:"+password+"@"+rip.String()+"/private/"); !strings.HasPrefix(got, "200 ") {
			t.Errorf("/private/ with the password from Vault: %q, want 200", got)
		}
		if got := get(t, "http://admin:wrong@"+rip.String()+"/private/"); !strings.HasPrefix(got, "401 ") {
			t.Errorf("/private/ with a wrong password: %q, want 401", got)
		}
		row("promote: %s serves version 1; /private/ 200 with Vault's password, 401 without", rip)
		ds := cloud.Droplets()
		if len(ds) != 1 {
			t.Fatalf("droplets %+v, want one", ds)
		}
		console, err := cloud.Console(ds[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Linux version", "configured", "as " + ds[0].Guest.String() + "/16 via 169.254.0.1", "user-data from digitalocean", "wrote 1 secrets"} {
			if !strings.Contains(string(console), want) {
				t.Errorf("the console lacks %q; it ends:\n%s", want, tail(string(console), 30))
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
		serves(t, "web on digitalocean 2")
		row("promote under a request loop (50 ms): %d answered, %d failed, longest gap across the move %s, answers %v",
			res.ok, res.failed, res.gapAround(t0, t1).Round(time.Millisecond), sortedKeys(res.bodies))
		if res.failed > 0 {
			t.Errorf("%d requests failed across the reserved IP move", res.failed)
		}
		loop = startRequestLoop("http://"+rip.String()+"/", 50*time.Millisecond)
		t0 = time.Now()
		rb := must(t, "rollout", "rollback", "web")
		t1 = time.Now()
		res = loop.stop()
		serves(t, "web on digitalocean 1")
		row("rollback in %s: %d answered, %d failed, longest gap %s", rb.elapsed.Round(time.Millisecond), res.ok, res.failed, res.gapAround(t0, t1).Round(time.Millisecond))
		row("after the rollback: %s", accounted(t))
	})

	t.Run("drover killed with SIGKILL right after each transition converges when run again", func(t *testing.T) {
		page(t, "3")
		killAfterEachTransition(t, stream, drover, func(cmd string, points []rollout.State, r result) {
			row("%-8s killed after each of %v, rerun: exit %d in %s; %s", cmd, points, r.code, r.elapsed.Round(time.Millisecond), accounted(t))
		})
		serves(t, "web on digitalocean 1")
	})

	t.Run("prune deletes the custom images no rollout uses", func(t *testing.T) {
		before := len(cloud.Images())
		r := must(t, "images", "prune", "--keep", "1")
		row("images prune --keep 1: images %d -> %d; %s", before, len(cloud.Images()), accounted(t))
		if len(cloud.Images()) >= before {
			t.Errorf("prune left %d of %d images\n%s", len(cloud.Images()), before, r.stdout)
		}
		serves(t, "web on digitalocean 1")
	})
}
