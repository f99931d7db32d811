//go:build e2e && lab

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/cloudlab/vm"
)

// TestE2EWebBootsAsEC2 builds the example's web role (on the warm base-tree cache, as the other e2e
// tests do) and boots its raw disk the way EC2 would (internal/cloudlab/vm: NVMe, UEFI, no fw_cfg,
// the metadata service at 169.254.169.254 on the link-local network), with an IMDSv2 handler serving
// drover user-data. The guest must ask a session token and then its user-data with it, nginx must
// answer on the machine's address, and the serial console must show the kernel (ttyS0) and
// drover-boot naming its user-data source "ec2-imdsv2", and systemd-timesyncd must start.
func TestE2EWebBootsAsEC2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e boot needs root (it builds an image)")
	}
	disk := webDisk(t)
	imds := &imdsLog{token: "AQAEAcloudlab-session-token==", userData: `{"version":1,"role":"web"}`}
	addr := netip.MustParseAddr("127.0.24.10")
	start := time.Now()
	m, err := vm.Start(context.Background(), vm.Spec{
		Disk: disk, Arch: "amd64", BootMode: vm.BootUEFI, Address: addr, Ports: []int{80},
		Metadata: imds, Dir: filepath.Join(t.TempDir(), "vm"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Error(err)
		}
	})

	client := &http.Client{Timeout: 3 * time.Second}
	var answered time.Duration
	var console string
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if answered == 0 {
			if resp, err := client.Get("http://" + addr.String() + "/"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					answered = time.Since(start)
				}
			}
		}
		b, _ := m.Console()
		console = string(b)
		if answered != 0 && strings.Contains(console, "ec2-imdsv2") {
			break
		}
	}
	t.Logf("web answered on %s:80 %s after vm.Start; metadata requests: %v", addr, answered.Round(100*time.Millisecond), imds.requests())
	if answered == 0 {
		t.Errorf("web never answered on %s:80", addr)
	}
	if !strings.Contains(console, "Linux version") || !strings.Contains(console, "ttyS0") {
		t.Errorf("the serial console does not show the kernel on ttyS0")
	}
	if !strings.Contains(console, "booted: no secrets to fetch (user-data from ec2-imdsv2 without a vault section)") {
		t.Errorf("the console never shows drover-boot reading its user-data from ec2-imdsv2")
	}
	// The image's clock: timesyncd (pointed at EC2's 169.254.169.123 first) runs.
	if !strings.Contains(console, "Network Time Synchronization") {
		t.Errorf("the console never shows systemd-timesyncd starting")
	}
	want := []string{"PUT /latest/api/token 200", "GET /latest/user-data 200"}
	if got := imds.requests(); !hasInOrder(got, want) {
		t.Errorf("metadata requests %v, want %v in that order", got, want)
	}
	if t.Failed() {
		lines := strings.Split(console, "\n")
		t.Logf("console tail:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// TestE2EWebReachesARouteAsEC2 boots the web image as TestE2EWebBootsAsEC2 does, with user-data
// naming a Vault at 169.254.169.100:8200, a vm.Spec route to a handler on the host's loopback: the
// Vault "in the VPC". drover-boot's first Vault call (the wrapping lookup) must arrive there (the
// handler answers 404, so drover-boot then fails the boot: that is not what this test is about).
func TestE2EWebReachesARouteAsEC2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e boot needs root (it builds an image)")
	}
	disk := webDisk(t)
	vault := &imdsLog{}
	srv := httptest.NewServer(vault)
	t.Cleanup(srv.Close)
	imds := &imdsLog{token: "AQAEAcloudlab-session-token==", userData: `{"version":1,"role":"web","vault":{` +
		`"addr":"http://169.254.169.100:8200","role_id":"cloudlab-role","wrapped_secret_id":"hvs.cloudlab-wrapped",` +
		`"creation_path":"auth/approle/role/drover-web/secret-id"},` +
		`"secrets":[{"path":"kv/data/web/app","field":"password","name":"password"}]}`}
	m, err := vm.Start(context.Background(), vm.Spec{
		Disk: disk, Arch: "amd64", BootMode: vm.BootUEFI, Metadata: imds, Dir: filepath.Join(t.TempDir(), "vm"),
		Routes: map[netip.AddrPort]netip.AddrPort{
			netip.MustParseAddrPort("169.254.169.100:8200"): netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://")),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline) && len(vault.requests()) == 0; time.Sleep(time.Second) {
	}
	t.Logf("the routed Vault got %v %s after vm.Start; metadata requests: %v", vault.requests(), time.Since(start).Round(100*time.Millisecond), imds.requests())
	if got := vault.requests(); len(got) == 0 || got[0] != "POST /v1/sys/wrapping/lookup 404" {
		console, _ := m.Console()
		lines := strings.Split(string(console), "\n")
		t.Errorf("the routed Vault got %v, want drover-boot's POST /v1/sys/wrapping/lookup first; console tail:\n%s",
			got, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// webDisk builds the example's web role (on the warm base-tree cache, as the other e2e tests do)
// and returns a sparse copy of its raw disk: a machine owns its disk.
func webDisk(t *testing.T) string {
	t.Helper()
	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	if r := droverExec(t, nil, "--fleet", fleetFile, "build", "web"); r.code != 0 {
		t.Fatalf("drover build web: exit %d", r.code)
	}
	r := droverExec(t, nil, "--fleet", fleetFile, "--output", "json", "images", "show", "web")
	var web images.Manifest
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &web) != nil || web.Identity == "" {
		t.Fatalf("images show web: exit %d\n%s", r.code, r.stdout)
	}
	raw := filepath.Join(state, "images", strings.TrimPrefix(web.Identity, "sha256:"), "disk.raw")
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("cp", "--sparse=always", raw, disk).CombinedOutput(); err != nil {
		t.Fatalf("copying the image (the machine owns its disk): %v: %s", err, out)
	}
	return disk
}

// imdsLog is an IMDSv2 handler that logs each request as "METHOD PATH STATUS": PUT /latest/api/token
// (with its TTL header) gives the session token, and /latest/user-data answers only with it.
type imdsLog struct {
	token, userData string
	mu              sync.Mutex
	log             []string
}

func (h *imdsLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	switch {
	case r.URL.Path == "/latest/api/token" && r.Method == http.MethodPut:
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			code = http.StatusBadRequest
			break
		}
		io.WriteString(w, h.token)
	case r.URL.Path == "/latest/user-data" && r.Method == http.MethodGet:
		if r.Header.Get("X-aws-ec2-metadata-token") != h.token {
			code = http.StatusUnauthorized
			break
		}
		io.WriteString(w, h.userData)
	default:
		code = http.StatusNotFound
	}
	if code != http.StatusOK {
		http.Error(w, http.StatusText(code), code)
	}
	h.mu.Lock()
	h.log = append(h.log, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, code))
	h.mu.Unlock()
}

func (h *imdsLog) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

// hasInOrder reports whether want appears in got as a subsequence.
func hasInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
