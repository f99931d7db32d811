package qemu

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

func newTest(t *testing.T, mutate ...func(*Config)) *Provider {
	t.Helper()
	cfg := NewDefaultConfig(func(string) (string, bool) { return "", false })
	cfg.Network = "127.0.19.0/24"
	for _, m := range mutate {
		m(cfg)
	}
	p, err := New(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewChecksConfig(t *testing.T) {
	cfg := NewDefaultConfig(config.OS())
	cfg.Network = "10.0.0.0/24"
	_, err := New(cfg, t.TempDir())
	var ae *config.AttrError
	if !errors.As(err, &ae) || ae.Attribute() != "network" || !strings.HasPrefix(err.Error(), "qemu: ") {
		t.Fatalf("New with a non-loopback network: %v", err)
	}
	if _, err := New(NewDefaultConfig(config.OS()), ""); err == nil {
		t.Fatal("New with an empty state directory: no error")
	}
}

func TestInstanceID(t *testing.T) {
	a, b := instanceID("rollout-1/web/0"), instanceID("rollout-1/web/1")
	if a == b || a != instanceID("rollout-1/web/0") {
		t.Fatalf("IDs %s and %s: not a function of the token", a, b)
	}
	for _, id := range []string{a, b} {
		if !validID(id) {
			t.Errorf("validID(%q) = false", id)
		}
	}
	for _, id := range []string{"", "vm-../../etc", "i-123", "vm-0123456789a/"} {
		if validID(id) {
			t.Errorf("validID(%q) = true", id)
		}
	}
}

func TestArgs(t *testing.T) {
	p := newTest(t, func(c *Config) { c.Isolate = true; c.Memory = 256; c.CPUs = 2 })
	dir := p.instanceDir("vm-0123456789ab")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, userFile), []byte("token"), 0o600)
	r := &record{ID: "vm-0123456789ab", Address: netip.MustParseAddr("127.0.19.2"), Ports: []int{80, 443}}
	args := strings.Join(p.args(r, dir, "tcg"), " ")
	for _, want := range []string{
		"-accel tcg", "-m 256", "-smp 2", "-daemonize", "-nodefaults",
		"-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.19.2:80-:80,hostfwd=tcp:127.0.19.2:443-:443",
		"-device virtio-net-pci,netdev=n0",
		"-bios /usr/share/ovmf/OVMF.fd",
		"-fw_cfg name=opt/drover/user-data,file=" + filepath.Join(dir, userFile),
		"-fw_cfg name=opt/drover/lab,string=1",
		"-pidfile " + filepath.Join(dir, pidFile),
		"-serial file:" + filepath.Join(dir, consoleFile),
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	bios := newTest(t, func(c *Config) { c.Firmware = "bios" })
	os.Remove(filepath.Join(dir, userFile))
	args = strings.Join(bios.args(r, dir, "kvm"), " ")
	if !strings.Contains(args, "-fw_cfg name=opt/drover/lab,string=1") {
		t.Errorf("args lack the lab mark without user-data:\n%s", args)
	}
	for _, unwanted := range []string{"-bios", "opt/drover/user-data", "restrict"} {
		if strings.Contains(args, unwanted) {
			t.Errorf("args have %q:\n%s", unwanted, args)
		}
	}
	if !strings.Contains(args, "-cpu host") {
		t.Errorf("kvm args lack -cpu host:\n%s", args)
	}
}

func TestImageFormat(t *testing.T) {
	dir := t.TempDir()
	raw, qcow := filepath.Join(dir, "a.raw"), filepath.Join(dir, "a.qcow2")
	os.WriteFile(raw, make([]byte, 512), 0o644)
	os.WriteFile(qcow, append([]byte("QFI\xfb"), make([]byte, 508)...), 0o644)
	for path, want := range map[string]string{raw: "raw", qcow: "qcow2"} {
		if got, err := imageFormat(path); err != nil || got != want {
			t.Errorf("imageFormat(%s) = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := imageFormat(filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), "qemu: ") {
		t.Errorf("imageFormat of a missing file: %v", err)
	}
}

// TestAllocate: addresses of records and addresses where a port is taken
// are skipped.
func TestAllocate(t *testing.T) {
	p := newTest(t)
	if err := writeRecord(filepath.Join(p.instanceDir("vm-000000000001"), recordFile),
		&record{ID: "vm-000000000001", Address: netip.MustParseAddr("127.0.19.2")}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.19.3:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	avoid := map[netip.Addr]bool{netip.MustParseAddr("127.0.19.4"): true}
	got, err := p.allocate([]int{8080}, avoid)
	if err != nil || got != netip.MustParseAddr("127.0.19.5") {
		t.Fatalf("allocate = %v, %v; want 127.0.19.5", got, err)
	}
	small := newTest(t, func(c *Config) { c.Network = "127.0.19.0/30" })
	if got, err := small.allocate(nil, nil); err != nil || got != netip.MustParseAddr("127.0.19.2") {
		t.Fatalf("allocate in a /30 = %v, %v", got, err)
	}
	if err := writeRecord(filepath.Join(small.instanceDir("vm-000000000001"), recordFile),
		&record{ID: "vm-000000000001", Address: netip.MustParseAddr("127.0.19.2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := small.allocate(nil, nil); err == nil || !strings.Contains(err.Error(), "127.0.19.0/30") {
		t.Fatalf("allocate in a full /30: %v", err)
	}
}

// TestDeadInstance: a record whose process is gone, or is not its qemu,
// is reported terminated; Terminate cleans it up and keeps its token.
func TestDeadInstance(t *testing.T) {
	p := newTest(t)
	ctx := t.Context()
	id := instanceID("tok")
	r := &record{ID: id, Token: "tok", Labels: map[string]string{"role": "web"},
		PID: os.Getpid(), Address: netip.MustParseAddr("127.0.19.2"), Created: time.Now()}
	if err := writeRecord(filepath.Join(p.instanceDir(id), recordFile), r); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(p.instanceDir(id), overlayFile), []byte("x"), 0o644)
	got, err := p.Instances(ctx, compute.Selector{"role": "web"})
	if err != nil || len(got) != 1 || got[0].State != compute.Terminated {
		t.Fatalf("Instances = %+v, %v; want one terminated (the pid is not a qemu)", got, err)
	}
	if in, err := p.Launch(ctx, compute.Spec{Token: "tok", Image: compute.Image{Path: "/nonexistent"}}); err != nil || in.ID != id || in.State != compute.Terminated {
		t.Fatalf("Launch of a dead instance's token = %+v, %v; want it back, terminated", in, err)
	}
	if err := p.Terminate(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.instanceDir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Terminate left %s: %v", p.instanceDir(id), err)
	}
	if got, _ := p.Instances(ctx, nil); len(got) != 0 {
		t.Fatalf("Instances after Terminate = %+v", got)
	}
	in, err := p.Launch(ctx, compute.Spec{Token: "tok", Image: compute.Image{Path: "/nonexistent"}})
	if err != nil || in.ID != id || in.State != compute.Terminated {
		t.Fatalf("Launch of a terminated token = %+v, %v; want the tombstone", in, err)
	}
	if _, err := p.Instance(ctx, id); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("Instance of a terminated ID: %v, want ErrNotFound", err)
	}
}

func TestPruneTombstones(t *testing.T) {
	p := newTest(t)
	for _, id := range []string{"vm-000000000001", "vm-000000000002"} {
		if err := writeRecord(p.tombstone(id), &record{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-tombstoneTTL - time.Hour)
	os.Chtimes(p.tombstone("vm-000000000001"), old, old)
	p.pruneTombstones(time.Now())
	left, _ := filepath.Glob(filepath.Join(p.labDir(), "terminated", "*"))
	if len(left) != 1 || !strings.HasSuffix(left[0], "vm-000000000002.json") {
		t.Fatalf("after pruning: %v", left)
	}
	if tombstoneTTL < compute.TokenMemory {
		t.Fatalf("tombstones kept %s, less than compute.TokenMemory", tombstoneTTL)
	}
}

// TestLaunchBadImage: a Launch that fails before qemu runs leaves nothing.
func TestLaunchBadImage(t *testing.T) {
	p := newTest(t)
	_, err := p.Launch(t.Context(), compute.Spec{Token: "t", Image: compute.Image{Path: filepath.Join(t.TempDir(), "missing.raw")}})
	if err == nil || !strings.Contains(err.Error(), "missing.raw") {
		t.Fatalf("Launch with a missing image: %v", err)
	}
	if _, err := p.Launch(t.Context(), compute.Spec{Token: "t"}); err == nil {
		t.Fatal("Launch without an image: no error")
	}
	if ents, _ := os.ReadDir(p.instancesDir()); len(ents) != 0 {
		t.Fatalf("failed Launches left %v", ents)
	}
}

func TestRunningRejectsOthers(t *testing.T) {
	dir := t.TempDir()
	if running(os.Getpid(), dir) || running(0, dir) || running(1<<30, dir) {
		t.Fatal("running() accepted a process that is not the instance's qemu")
	}
}

// A qemu block's dir puts the lab elsewhere than the state directory (relative to the fleet file's
// directory), so that several state directories share one lab; without it the lab is the state
// directory's own.
func TestFactoryLabDir(t *testing.T) {
	fleetDir, state := t.TempDir(), t.TempDir()
	for _, tc := range []struct{ dir, want string }{
		{"", filepath.Join(state, "lab")},
		{"shared", filepath.Join(fleetDir, "shared", "lab")},
		{filepath.Join(state, "elsewhere"), filepath.Join(state, "elsewhere", "lab")},
	} {
		cfg := NewDefaultConfig(func(string) (string, bool) { return "", false })
		cfg.Dir = tc.dir
		p, err := Factory().Open(t.Context(), cfg, config.Env{Name: "lab", FleetDir: fleetDir, StateDir: state})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.(*Provider).labDir(); got != tc.want {
			t.Errorf("dir %q: the lab is at %s, want %s", tc.dir, got, tc.want)
		}
	}
}
