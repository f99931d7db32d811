//go:build e2e && lab

package main

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
)

// volumeCloud is one fake cloud of TestE2ECloudVolumes: its fleet file, its credentials, and the
// loopback addresses of its running instances.
type volumeCloud struct {
	name    string
	fleet   string
	env     []string
	device  string // how the mount's source starts in the guest: the kernel's name for the bus
	running func() []netip.Addr
	console func(t *testing.T, addr netip.Addr) string // the serial console of the instance at addr
	// consoles are the serial consoles of every instance the cloud has had, destroyed ones too.
	consoles func() map[string][]byte
}

// TestE2ECloudVolumes rolls out a role with a volume on each of the cloud lab's fakes (EC2 with
// EBS, Vultr with block storage, DigitalOcean with volumes), the three side by side, each one VM at
// a time: the handoff's first deploy makes the volume, which the fake hot-plugs into the running
// guest as that platform presents it (an NVMe controller whose serial is the EBS volume ID, a
// virtio disk whose serial is Vultr's mount_id, a SCSI disk DigitalOcean's udev names
// scsi-0DO_Volume_<name>); drover-boot finds it where the compute provider said, formats it
// (blank) and mounts it, and only then starts the role's services, which write a file on it. A new
// instance (the same image, forced) boots and waits with its services stopped; promote hands the
// volume over, and the file written on blue is there on green.
func TestE2ECloudVolumes(t *testing.T) {
	// Long and independent: it runs beside the package's other parallel e2e tests, on addresses of
	// its own (127.0.151.0/24 to 127.0.153.0/24).
	t.Parallel() // no lane: its subtests take them (laneOrder ranks TestE2ECloudVolumes/)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	begin := time.Now()
	store := s3lab.New(t, s3lab.Options{Buckets: []string{"drover-vultr", "drover-do"}})
	ec2 := awslab.New(t, awslab.Options{Ports: []int{80}, AddressRange: netip.MustParsePrefix("127.0.151.0/24"),
		Hypervisor: awslab.QEMU{Memory: 512, CPUs: 1}})
	vultr := vultrlab.New(t, vultrlab.Options{Ports: []int{80}, AddressRange: netip.MustParsePrefix("127.0.152.0/24"),
		Hypervisor: vultrlab.QEMU{Memory: 512, CPUs: 1}})
	do := dolab.New(t, dolab.Options{Ports: []int{80}, AddressRange: netip.MustParsePrefix("127.0.153.0/24"),
		Hypervisor: dolab.QEMU{Memory: 512, CPUs: 1}})

	// One directory, one fleet file per cloud: the three share the image catalog (.drover), so the
	// role's image is built once for all, and each has a state store of its own.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "data/site.conf"), "server {\n    listen 80 default_server;\n    root /srv/data;\n    location / { default_type text/plain; }\n}\n")
	// The stamp runs only once drover-boot has mounted the volume (it is one of the role's
	// services): "first" is the boot ID of the first instance that had the volume, "now" of the
	// one that has it, "mount" where it is mounted from.
	writeFile(t, filepath.Join(dir, "data/stamp.service"), `[Unit]
Description=e2e: stamp the data volume
Before=nginx.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'test -s /srv/data/first || cat /proc/sys/kernel/random/boot_id > /srv/data/first; cat /proc/sys/kernel/random/boot_id > /srv/data/now; findmnt -n -o SOURCE,FSTYPE /srv/data > /srv/data/mount; sync'

[Install]
WantedBy=multi-user.target
`)
	role := `
base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

role "data" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx", "e2fsprogs"]
    files = {
      "/etc/nginx/sites-available/default"    = "data/site.conf"
      "/etc/systemd/system/data-stamp.service" = "data/stamp.service"
    }
    services = ["data-stamp", "nginx"]
    run      = ["systemctl enable nginx data-stamp"]
  }
  deploy {
    compute  = "cloud"
    count    = 1
    ports    = [80]
    watch    = "5s"
    keep_old = "1h"
    health "http" {
      port     = 80
      path     = "/now"
      expect   = 200
      deadline = "8m"
    }
    volume "data" {
      size            = "1GiB"
      mount           = "/srv/data"
      snapshot_before = false
    }
  }
}
`
	fleetFile := func(name, compute string) string {
		path := filepath.Join(dir, name+".hcl")
		writeFile(t, path, "drover {\n  name = \"vol-"+name+"\"\n}\n\nstore \"local\" {\n  path = \"state-"+name+".db\"\n}\n\n"+compute+"\n"+role)
		return path
	}
	clouds := []volumeCloud{
		{
			name: "aws", device: "/dev/nvme1n1", env: ec2.Env(), consoles: ec2.Consoles,
			fleet: fleetFile("aws", "compute \"aws\" \"cloud\" {\n  region        = \"us-east-1\"\n  instance_type = \"t3.micro\"\n  zone          = \"us-east-1a\"\n}\n"),
			running: func() (out []netip.Addr) {
				for _, in := range ec2.Instances() {
					if in.State == "running" {
						out = append(out, in.PublicIP)
					}
				}
				return out
			},
			console: func(t *testing.T, addr netip.Addr) string {
				for _, in := range ec2.Instances() {
					if in.State == "running" && in.PublicIP == addr {
						return consoleOutput(t, ec2, in.ID)
					}
				}
				return ""
			},
		},
		{
			name: "vultr", device: "/dev/vd", consoles: vultr.Consoles,
			env: []string{"VULTR_API_KEY=" + vultr.APIKey(), "VULTR_API_URL=" + vultr.URL(),
				"VULTR_OBJECT_STORAGE_ACCESS_KEY=" + store.AccessKeyID, "VULTR_OBJECT_STORAGE_SECRET_KEY=" + store.SecretAccessKey,
				"VULTR_OBJECT_STORAGE_PATH_STYLE=true"},
			fleet: fleetFile("vultr", "compute \"vultr\" \"cloud\" {\n  region           = \""+vultr.Region()+"\"\n  plan             = \"vc2-1c-1gb\"\n  storage_endpoint = \""+store.URL+"\"\n  bucket           = \"drover-vultr\"\n}\n"),
			running: func() (out []netip.Addr) {
				for _, in := range vultr.Instances() {
					if in.Status == "active" && in.PowerStatus == "running" {
						out = append(out, in.MainIP)
					}
				}
				return out
			},
			console: func(t *testing.T, addr netip.Addr) string {
				for _, in := range vultr.Instances() {
					if in.MainIP == addr {
						return string(vultr.Console(in.ID))
					}
				}
				return ""
			},
		},
		{
			name: "digitalocean", device: "/dev/sd",
			consoles: func() map[string][]byte {
				out := map[string][]byte{}
				for id, b := range do.Consoles() {
					out[strconv.Itoa(id)] = b
				}
				return out
			},
			env:   []string{"DIGITALOCEAN_TOKEN=" + do.Token(), "SPACES_ACCESS_KEY_ID=" + store.AccessKeyID, "SPACES_SECRET_ACCESS_KEY=" + store.SecretAccessKey},
			fleet: fleetFile("digitalocean", "compute \"digitalocean\" \"cloud\" {\n  region            = \""+do.Region()+"\"\n  size              = \"s-1vcpu-1gb\"\n  api_url           = \""+do.URL()+"\"\n  spaces_bucket     = \"drover-do\"\n  spaces_endpoint   = \""+store.URL+"\"\n  spaces_path_style = true\n}\n"),
			running: func() (out []netip.Addr) {
				for _, d := range do.Droplets() {
					if d.Status == "active" {
						out = append(out, d.Address)
					}
				}
				return out
			},
			console: func(t *testing.T, addr netip.Addr) string {
				for _, d := range do.Droplets() {
					if d.Address == addr {
						b, _ := do.Console(d.ID)
						return string(b)
					}
				}
				return ""
			},
		},
	}
	must := func(t *testing.T, c volumeCloud, args ...string) result {
		t.Helper()
		r := droverExec(t, c.env, append([]string{"--fleet", c.fleet}, args...)...)
		if r.code != 0 {
			t.Errorf("%s: drover %s: exit %d\n%s", c.name, strings.Join(args, " "), r.code, tail(r.stderr, 40))
			// drover destroys a green that failed its checks: the cloud keeps its console, which
			// says why. One entry each, after the error, so that CI's summary of what the test said
			// last has them.
			all := c.consoles()
			for _, id := range slices.Sorted(maps.Keys(all)) {
				t.Logf("%s: the console of %s ends:\n%s", c.name, id, tail(string(all[id]), 11))
			}
			t.FailNow()
		}
		return r
	}
	// only is the one running instance of c.
	only := func(t *testing.T, c volumeCloud) netip.Addr {
		t.Helper()
		addrs := c.running()
		if len(addrs) != 1 {
			t.Fatalf("%s: %d running instances %v, want 1", c.name, len(addrs), addrs)
		}
		return addrs[0]
	}
	file := func(t *testing.T, addr netip.Addr, name string) string {
		t.Helper()
		got := get(t, "http://"+addr.String()+"/"+name)
		body, ok := strings.CutPrefix(got, "200 ")
		if !ok {
			t.Fatalf("%s/%s answers %q, want 200 and the file", addr, name, got)
		}
		return strings.TrimSpace(body)
	}
	// waitConsole waits until the console of the instance at addr says want.
	waitConsole := func(t *testing.T, c volumeCloud, addr netip.Addr, want string, limit time.Duration) string {
		t.Helper()
		var console string
		for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			if console = c.console(t, addr); strings.Contains(console, want) {
				return console
			}
		}
		t.Fatalf("%s: the console of %s never says %q within %s; it ends:\n%s", c.name, addr, want, limit, tail(console, 30))
		return ""
	}
	var mu sync.Mutex // the parallel subtests' timings and firstBoot
	var timings []string
	took := func(c volumeCloud, what string, since time.Time) {
		mu.Lock()
		defer mu.Unlock()
		timings = append(timings, fmt.Sprintf("%s: %s %s", c.name, what, time.Since(since).Round(time.Second)))
	}
	defer func() {
		t.Logf("MEASURE volumes on the cloud lab (wall time %s):\n%s", time.Since(begin).Round(time.Second), strings.Join(timings, "\n"))
	}()

	buildStart := time.Now()
	must(t, clouds[0], "build", "data")
	took(clouds[0], "build of data (shared by the three)", buildStart)

	firstBoot := map[string]string{}
	t.Run("first deploy: the volume is made, hot-plugged, formatted and mounted before the services start", func(t *testing.T) {
		for _, c := range clouds {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				takeLane(t)
				start := time.Now()
				must(t, c, "rollout", "start", "data")
				must(t, c, "rollout", "promote", "data")
				took(c, "first deploy (publish, boot, volume, health, promote)", start)
				blue := only(t, c)
				first, now := file(t, blue, "first"), file(t, blue, "now")
				if first == "" || first != now {
					t.Errorf("%s: the first instance stamped first %q and now %q, want its boot ID in both", c.name, first, now)
				}
				if mount := file(t, blue, "mount"); !strings.HasPrefix(mount, c.device) || !strings.HasSuffix(mount, " ext4") {
					t.Errorf("%s: /srv/data is mounted from %q, want an ext4 on %s*", c.name, mount, c.device)
				}
				mu.Lock()
				firstBoot[c.name] = first
				mu.Unlock()
				// drover-boot on blue's console: the volume blank, formatted, then mounted.
				console := waitConsole(t, c, blue, "mounted on /srv/data", time.Minute)
				if !strings.Contains(console, "is blank: making ext4 labelled data") {
					t.Errorf("%s: blue's console does not say drover-boot formatted the blank volume; it ends:\n%s", c.name, tail(console, 30))
				}
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// The same image again (--force): a second instance, the handoff as for a new image, without
	// a second build.
	t.Run("a second instance waits with its services stopped, promote hands the volume over with its data", func(t *testing.T) {
		for _, c := range clouds {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				takeLane(t)
				blue := only(t, c)
				start := time.Now()
				must(t, c, "rollout", "start", "--force", "data")
				took(c, "rollout start --force (green boots and waits)", start)
				var green netip.Addr
				for _, a := range c.running() {
					if a != blue {
						green = a
					}
				}
				if !green.IsValid() {
					t.Fatalf("%s: no green beside blue %s: %v", c.name, blue, c.running())
				}
				// Green has booted and drover-boot waits for the volume: no service runs meanwhile.
				waitConsole(t, c, green, "waiting for volume data at ", 8*time.Minute)
				if got := get(t, "http://"+green.String()+"/now"); !strings.HasPrefix(got, "error: ") {
					t.Errorf("%s: green %s answers %q without the volume: its services started", c.name, green, got)
				}
				start = time.Now()
				must(t, c, "rollout", "promote", "data")
				took(c, "promote (stop blue, detach, attach, mount, health)", start)
				if addr := only(t, c); addr != green {
					t.Fatalf("%s: after promote %s runs, want green %s", c.name, addr, green)
				}
				first, now := file(t, green, "first"), file(t, green, "now")
				mu.Lock()
				want := firstBoot[c.name]
				mu.Unlock()
				if first != want {
					t.Errorf("%s: green's volume says the first instance was %q, want blue's %q: the file written on blue did not come over", c.name, first, want)
				}
				if now == first {
					t.Errorf("%s: green's stamp %q is blue's: green's services did not run on the volume", c.name, now)
				}
				if mount := file(t, green, "mount"); !strings.HasPrefix(mount, c.device) || !strings.HasSuffix(mount, " ext4") {
					t.Errorf("%s: /srv/data on green is mounted from %q, want an ext4 on %s*", c.name, mount, c.device)
				}
				// The volume held data: checked, never formatted again.
				if console := waitConsole(t, c, green, "mounted on /srv/data", time.Minute); strings.Contains(console, "is blank: making") {
					t.Errorf("%s: green's drover-boot formatted the handed-over volume; its console ends:\n%s", c.name, tail(console, 30))
				}
			})
		}
	})
}
