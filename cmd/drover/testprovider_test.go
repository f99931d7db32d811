package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// skyConfig is the compute "sky" block of the test-only provider.
type skyConfig struct {
	// Network is the loopback /24 its instances get addresses in, such as "127.0.88.0".
	Network string `hcl:"network,optional"`
}

// skyCloud is a compute provider of a type drover does not ship, registered by a test only: its
// instances are HTTP servers on loopback addresses of their own that answer with the identity of
// the image they were launched from. It shows that a new provider type is its factory plus one
// registration, with nothing else to edit.
type skyCloud struct {
	mu     sync.Mutex
	seq    int
	tokens map[string]string
	vms    map[string]*skyVM
	opened int // how many times the factory opened a block
}

type skyVM struct {
	in  compute.Instance
	srv *http.Server
}

func newSkyCloud(t testing.TB) *skyCloud {
	c := &skyCloud{tokens: map[string]string{}, vms: map[string]*skyVM{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, vm := range c.vms {
			if vm.srv != nil {
				vm.srv.Close()
			}
		}
	})
	return c
}

// factory is what a provider package would export.
func (c *skyCloud) factory() compute.Factory {
	return compute.Factory{
		Type:      "sky",
		Summary:   "a test-only cloud of HTTP servers on loopback",
		NewConfig: func(config.LookupEnv) (any, error) { return &skyConfig{Network: "127.0.88.0"}, nil },
		Open: func(_ context.Context, cfg any, env config.Env) (compute.Provider, error) {
			sc, err := config.As[skyConfig]("sky", cfg)
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.opened++
			c.mu.Unlock()
			return &skyProvider{cloud: c, network: netip.MustParseAddr(sc.Network).As4()}, nil
		},
	}
}

type skyProvider struct {
	cloud   *skyCloud
	network [4]byte
}

func (p *skyProvider) Launch(_ context.Context, spec compute.Spec) (compute.Instance, error) {
	if err := spec.Validate(); err != nil {
		return compute.Instance{}, err
	}
	c := p.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.tokens[spec.Token]; ok {
		return c.vms[id].in.Clone(), nil
	}
	c.seq++
	a := p.network
	a[3] = byte(1 + c.seq)
	in := compute.Instance{ID: fmt.Sprintf("sky-%d", c.seq), Name: spec.Name, Labels: maps.Clone(spec.Labels),
		State: compute.Running, Address: netip.AddrFrom4(a), Ports: slices.Clone(spec.Ports), Created: time.Now()}
	vm := &skyVM{in: in}
	body := []byte(spec.Image.Identity)
	for _, port := range spec.Ports {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(in.Address, uint16(port)).String())
		if err != nil {
			return compute.Instance{}, fmt.Errorf("sky: %w", err)
		}
		vm.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })}
		go vm.srv.Serve(ln)
	}
	c.tokens[spec.Token] = in.ID
	c.vms[in.ID] = vm
	return in.Clone(), nil
}

func (p *skyProvider) Instances(_ context.Context, sel compute.Selector) ([]compute.Instance, error) {
	c := p.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []compute.Instance
	for _, vm := range c.vms {
		if sel.Matches(vm.in.Labels) {
			out = append(out, vm.in.Clone())
		}
	}
	return out, nil
}

func (p *skyProvider) Terminate(_ context.Context, id string) error {
	c := p.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	if vm, ok := c.vms[id]; ok {
		if vm.srv != nil {
			vm.srv.Close()
		}
		delete(c.vms, id)
	}
	return nil
}

// running lists the identities the cloud's running instances serve, by asking them over HTTP.
func (c *skyCloud) served(t *testing.T) []string {
	t.Helper()
	c.mu.Lock()
	var addrs []string
	for _, vm := range c.vms {
		addrs = append(addrs, vm.in.Endpoint(vm.in.Ports[0]).String())
	}
	c.mu.Unlock()
	var out []string
	for _, a := range addrs {
		resp, err := http.Get("http://" + a + "/")
		if err != nil {
			t.Fatalf("instance at %s: %v", a, err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out
}

// droverWith runs the CLI in-process with extra providers registered beside the built-in ones.
func droverWith(t *testing.T, extra all.Providers, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr, func(string) (string, bool) { return "", false })
	a.extraProviders = extra
	code := runApp(a, append([]string{"drover"}, args...))
	return code, stdout.String(), stderr.String()
}

const skyFleet = `
compute "sky" "cloud" {
  network = "127.0.88.0"
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "cloud"
    count    = 2
    ports    = [18080]
    keep_old = "0s"
    watch    = "0s"
    health "http" {
      port              = 18080
      interval          = "100ms"
      healthy_threshold = 1
    }
  }
}
`

// TestNewProviderTypeFromOneRegistration adds a compute type drover does not ship through one
// registration (its factory) and rolls a role out on it through the fleet file: validate, start,
// promote, a second image, and a rollback, on instances that really serve.
func TestNewProviderTypeFromOneRegistration(t *testing.T) {
	dir := t.TempDir()
	fleetFile := dir + "/drover.hcl"
	if err := writeTestFile(fleetFile, skyFleet); err != nil {
		t.Fatal(err)
	}
	state := dir + "/.drover"
	ids := seedCatalog(t, state, 2)
	cloud := newSkyCloud(t)
	sky := all.Providers{Compute: []compute.Factory{cloud.factory()}}
	cli := func(args ...string) (int, string, string) {
		return droverWith(t, sky, append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	}

	if code, _, stderr := droverWith(t, all.Providers{}, "--fleet", fleetFile, "validate"); code != exitUsage || !bytes.Contains([]byte(stderr), []byte(`no compute provider of type "sky"`)) {
		t.Fatalf("without the registration, validate: exit %d\n%s", code, stderr)
	}
	if code, stdout, stderr := cli("validate"); code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	for i, id := range ids {
		if code, stdout, stderr := cli("rollout", "start", "--image", id, "web"); code != exitOK {
			t.Fatalf("rollout start of image %d: exit %d\n%s%s", i, code, stdout, stderr)
		}
		if code, stdout, stderr := cli("rollout", "promote", "web"); code != exitOK {
			t.Fatalf("rollout promote of image %d: exit %d\n%s%s", i, code, stdout, stderr)
		}
		if got := cloud.served(t); !slices.Equal(got, []string{id, id}) {
			t.Fatalf("after promoting image %d the cloud serves %v, want 2 instances of %s", i, got, id)
		}
	}
	if code, stdout, stderr := cli("rollout", "rollback", "web"); code != exitOK {
		t.Fatalf("rollout rollback: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := cloud.served(t); !slices.Equal(got, []string{ids[0], ids[0]}) {
		t.Errorf("after the rollback the cloud serves %v, want 2 instances of %s", got, ids[0])
	}
	if cloud.opened == 0 {
		t.Error("the factory was never asked to open the block")
	}
}

func writeTestFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
