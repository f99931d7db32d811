//go:build e2e && lab

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
)

// containerFleet is the fleet of TestE2EContainerBaked: role app runs the test's server three
// times from one image baked in by digest, with podman (8080), with docker (8081) and in a Compose
// stack (8082, compose.yml next to the fleet file), deployed on an isolated lab; leaky bakes an image whose layer holds a made-up AWS key; wrong
// names a digest the registry does not have.
const containerFleet = `
drover {
  name = "containers"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

store "local" {}

# isolate: user-mode networking with restrict=on, so the instance reaches nothing but what is
# forwarded to it; the registry is stopped before the rollout anyway.
compute "qemu" "lab" {
  memory  = 1024
  cpus    = 1
  accel   = "auto"
  network = "127.0.191.0/24"
  isolate = true
}

role "app" {
  image {
    base = "debian-bookworm"
    container "hello" {
      image             = "%[1]s/drover/hello:1"
      digest            = "%[2]s"
      command           = ["-listen", ":8080", "-say", "hello from the baked container"]
      insecure_registry = true
    }
    container "hello-docker" {
      image             = "%[1]s/drover/hello:1"
      digest            = "%[2]s"
      engine            = "docker"
      command           = ["-listen", ":8081", "-say", "hello from docker"]
      insecure_registry = true
    }
    compose "stack" {
      file = "compose.yml"
    }
  }
  deploy {
    compute = "lab"
    count   = 1
    ports   = [8080, 8081, 8082]
    health "http" {
      port     = 8080
      path     = "/"
      expect   = 200
      # TCG on a shared machine: the boot, then podman's first start of the container.
      deadline = "10m"
    }
  }
}

role "leaky" {
  image {
    base = "debian-bookworm"
    container "leaky" {
      image             = "%[1]s/drover/leaky:1"
      digest            = "%[3]s"
      insecure_registry = true
    }
  }
}

# plain: app's packages without its containers, built only by the measurement
# (DROVER_MEASURE_CONTAINERS=1): what a baked container adds to a build.
role "plain" {
  image {
    base     = "debian-bookworm"
    packages = ["podman", "docker.io", "skopeo", "apparmor", "docker-compose"]
  }
}

role "wrong" {
  image {
    base = "debian-bookworm"
    container "missing" {
      image             = "%[1]s/drover/hello:1"
      digest            = "sha256:%[4]s"
      insecure_registry = true
    }
  }
}
`

// TestE2EContainerBaked builds a small OCI image (a static Go HTTP server), pushes it to Debian's
// docker-registry on loopback, and bakes it into a role's image pinned by digest. With the
// registry stopped, a rebuild is a cache hit, and drover rollout start boots the image on a lab
// whose guests reach nothing (isolate): the health check passes on the container's port and the
// container's server answers there. A layer holding a made-up AWS key
// fails the build at the secret scan, and a digest the registry does not have fails it naming the
// container block.
func TestE2EContainerBaked(t *testing.T) {
	t.Parallel() // its own loopback ports and state: independent of the other e2e tests
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	for _, tool := range []string{"skopeo", "docker-registry"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install skopeo docker-registry): %v", tool, err)
		}
	}
	work := t.TempDir()
	server := buildStaticServer(t, work)
	hello := writeOCIImage(t, filepath.Join(work, "hello-oci"), map[string][]byte{"hello": server}, []string{"/hello"})
	leaky := writeOCIImage(t, filepath.Join(work, "leaky-oci"), map[string][]byte{
		"etc/app/aws.env": []byte("AWS_ACCESS_KEY_ID=AKIADROVERPLANTED0X2\n"),
		"hello":           server,
	}, []string{"/hello"})

	registry, stopRegistry := startRegistry(t, work)
	pushOCI(t, filepath.Join(work, "hello-oci"), registry+"/drover/hello:1", hello)
	pushOCI(t, filepath.Join(work, "leaky-oci"), registry+"/drover/leaky:1", leaky)

	fleetDir := filepath.Join(work, "fleet")
	if err := os.MkdirAll(fleetDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	src := fmt.Sprintf(containerFleet, registry, hello, leaky, strings.Repeat("0", 64))
	if err := os.WriteFile(fleetFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := fmt.Sprintf(composeStack, registry, hello)
	if err := os.WriteFile(filepath.Join(fleetDir, "compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(fleetDir, ".drover")
	drover := func(args ...string) result {
		return droverExec(t, nil, append([]string{"--fleet", fleetFile}, args...)...)
	}

	cold := drover("build", "app")
	if cold.code != 0 {
		t.Fatalf("the build of app failed: exit %d", cold.code)
	}
	list, err := images.OpenCatalog(state).List()
	if err != nil || len(list) != 1 {
		t.Fatalf("catalog: %v, %d images, want 1", err, len(list))
	}
	m := list[0]
	var copySeconds float64
	for _, s := range m.Steps {
		if s.Name == "containers" {
			copySeconds = s.Seconds
		}
	}
	if copySeconds == 0 {
		t.Errorf("the manifest records no containers step: %+v", m.Steps)
	}
	t.Logf("MEASURE build of app: %s; its containers step (skopeo copy of a %d KiB image): %.1fs",
		cold.elapsed.Round(time.Second), len(server)/1024, copySeconds)

	t.Run("a layer holding a secret fails the build at the scan", func(t *testing.T) {
		r := drover("build", "leaky")
		out := r.stdout + r.stderr
		if r.code != exitFailure {
			t.Errorf("the build of leaky exited %d, want %d", r.code, exitFailure)
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, tree.ContainerGraphRoot+"/vfs/dir/") && strings.Contains(line, "/etc/app/aws.env:") && strings.Contains(line, ": aws-access-key: ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line names the key's file in the container store with rule aws-access-key:\n%s", out)
		}
		if strings.Contains(out, "AKIADROVERPLANTED0X2") {
			t.Errorf("the output shows the planted key whole")
		}
	})

	t.Run("a digest the registry does not have fails the build naming the block", func(t *testing.T) {
		r := drover("build", "wrong")
		out := r.stdout + r.stderr
		if r.code == 0 || !strings.Contains(out, `container "missing" (`+fleetFile+":") || !strings.Contains(out, "sha256:"+strings.Repeat("0", 64)) ||
			!strings.Contains(out, "manifest unknown") {
			t.Errorf("exit %d; the output does not name the container block, its digest and that the registry does not know it:\n%s", r.code, out)
		}
	})

	if os.Getenv("DROVER_MEASURE_CONTAINERS") != "" {
		measureContainerBuilds(t, drover)
	}

	// The registry is gone from here on: nothing may need it.
	stopRegistry()
	for i := range 3 {
		noop := drover("build", "app")
		if noop.code != 0 || !strings.Contains(noop.stdout, "app: up to date (sha256:") {
			t.Errorf("the rebuild with the registry down exited %d and did not say app is up to date", noop.code)
		}
		t.Logf("MEASURE no-op rebuild %d of app with the registry down: %s", i+1, noop.elapsed.Round(time.Millisecond))
	}

	lab, err := qemu.New(qemu.NewDefaultConfig(os.LookupEnv), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	start := drover("rollout", "start", "app")
	if start.code != 0 {
		t.Fatalf("rollout start app: exit %d", start.code)
	}
	live := liveInstances(t, lab, compute.Selector{"role": "app"})
	if len(live) != 1 {
		t.Fatalf("%d live instances of app, want 1", len(live))
	}
	body := get(t, "http://"+live[0].Endpoint(8080).String()+"/")
	if body != "200 hello from the baked container\n" {
		t.Errorf("the instance's container served %q", body)
	}
	t.Logf("MEASURE rollout start of app (boot, podman's start, health): %s", start.elapsed.Round(time.Second))
	// Docker's container and the Compose stack start after the image is loaded into Docker's
	// store (drover-docker-load.service), which may end after podman's container answered.
	ready := time.Now()
	for port, want := range map[int]string{8081: "200 hello from docker\n", 8082: "200 hello from compose\n"} {
		got := ""
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(3 * time.Second) {
			if got = get(t, "http://"+live[0].Endpoint(port).String()+"/"); got == want {
				break
			}
		}
		if got != want {
			console, _ := os.ReadFile(filepath.Join(state, "lab", "instances", live[0].ID, "console.log"))
			t.Errorf("port %d served %q, want %q; the console's end:\n%s", port, got, want, tail(string(console), 60))
		}
	}
	t.Logf("MEASURE docker's container and the Compose stack answering after podman's: %s", time.Since(ready).Round(time.Second))
}

// composeStack is the Compose file of TestE2EContainerBaked's app role: the baked image by digest,
// on the instance's network.
const composeStack = `version: "3.8"
services:
  greeter:
    image: %[1]s/drover/hello:1@%[2]s
    command: ["-listen", ":8082", "-say", "hello from compose"]
    network_mode: host
`

// measureContainerBuilds builds app (its image baked twice: for podman and for docker) and plain
// (the same packages, no container) three times each with --force, one after the other, and logs
// each build's time and app's containers and disk steps.
func measureContainerBuilds(t *testing.T, drover func(args ...string) result) {
	t.Helper()
	for i := range 3 {
		for _, role := range []string{"plain", "app"} {
			r := drover("build", "--force", role)
			if r.code != 0 {
				t.Fatalf("measure: build --force %s: exit %d", role, r.code)
			}
			// The step times this build printed ("app: disk  4.6s").
			steps := map[string]string{}
			for _, line := range strings.Split(r.stdout+r.stderr, "\n") {
				if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), role+":")); len(f) == 2 {
					steps[f[0]] = f[1]
				}
			}
			load, _ := os.ReadFile("/proc/loadavg")
			t.Logf("MEASURE run %d build --force %s: %s (containers %s, disk %s); load %s", i+1, role,
				r.elapsed.Round(100*time.Millisecond), steps["containers"], steps["disk"], strings.Fields(string(load))[0])
		}
	}
}

// buildStaticServer builds the test's HTTP server, static (CGO_ENABLED=0), and returns its bytes.
func buildStaticServer(t *testing.T, work string) []byte {
	t.Helper()
	dir := filepath.Join(work, "server")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const src = `package main

import (
	"flag"
	"fmt"
	"net/http"
)

func main() {
	listen := flag.String("listen", ":80", "address")
	say := flag.String("say", "hello", "what to answer")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, *say) })
	panic(http.ListenAndServe(*listen, nil))
}
`
	for name, content := range map[string]string{"main.go": src, "go.mod": "module hello\n\ngo 1.21\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "hello", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the test server: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startRegistry runs Debian's docker-registry on a free loopback port with its storage in the
// test's directory, waits for it to answer, and returns its host:port and a stop function (also
// run when the test ends) that kills it by PID and waits for it.
func startRegistry(t *testing.T, work string) (string, func()) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := filepath.Join(work, "registry")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("docker-registry: %v", err)
	}
	pid := cmd.Process.Pid
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logFile.Close()
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not answer on %s within 30s: %v\n%s", addr, err, log)
		}
	}
	return addr, stop
}

// pushOCI copies an OCI layout to the registry with skopeo and checks that the registry stored it
// under the manifest digest the test computed.
func pushOCI(t *testing.T, layout, ref, digest string) {
	t.Helper()
	digestFile := layout + ".digest"
	out, err := exec.Command("skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "--digestfile", digestFile,
		"oci:"+layout+":1", "docker://"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy to %s: %v\n%s", ref, err, out)
	}
	got, err := os.ReadFile(digestFile)
	if err != nil || strings.TrimSpace(string(got)) != digest {
		t.Fatalf("the registry stored %s as %q (%v), want %s", ref, got, err, digest)
	}
}

// ociJSON marshals v for an OCI blob.
func ociJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
