package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/dolab"
)

// fakeNet records what drover-boot asks of the network.
type fakeNet struct {
	mu    sync.Mutex
	links []netLink
	calls []string
}

func (n *fakeNet) Links(context.Context) ([]netLink, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]netLink(nil), n.links...), nil
}

func (n *fakeNet) AddAddress(_ context.Context, link string, p netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, "add "+link+" "+p.String())
	return nil
}

func (n *fakeNet) DelAddress(_ context.Context, link string, p netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, "del "+link+" "+p.String())
	return nil
}

func (n *fakeNet) Apply(_ context.Context, link string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, "apply "+link)
	return nil
}

// dropletMetadataServer creates a droplet in the cloud lab's fake DigitalOcean (through its API)
// and serves that droplet's metadata service, the one droplets booted by dolab get: drover-boot
// and the fake must agree on the document.
func dropletMetadataServer(t *testing.T, userData string) (*httptest.Server, dolab.Droplet) {
	return dropletMetadataServerWrapped(t, userData, func(h http.Handler) http.Handler { return h })
}

func dropletMetadataServerWrapped(t *testing.T, userData string, wrap func(http.Handler) http.Handler) (*httptest.Server, dolab.Droplet) {
	t.Helper()
	c := dolab.New(t, dolab.Options{})
	img := c.AddImage("web", make([]byte, 1<<20))
	body := fmt.Sprintf(`{"name":"web-0","region":%q,"size":"s-1vcpu-1gb","image":%d,"user_data":%q,"tags":["drover"]}`, c.Region(), img, userData)
	req, _ := http.NewRequest(http.MethodPost, c.URL()+"v2/droplets", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("creating the droplet: %s", res.Status)
	}
	d := c.Droplets()[0]
	srv := httptest.NewServer(wrap(c.Metadata(d.ID)))
	t.Cleanup(srv.Close)
	return srv, d
}

func dropletBoot(t *testing.T, url string, nw dropletNet) *boot {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sys/class/dmi/id/sys_vendor"), []byte("DigitalOcean\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	return &boot{c: config{Root: root, MetadataURL: url, FwCfgPath: none, Net: nw, Wait: 5 * time.Second, Stdout: &out, Stderr: &out}}
}

// TestDropletNetworkFromMetadata: on a droplet with no address (no DHCP), drover-boot adds a
// link-local address, reads the metadata, writes the networkd file of the public interface
// (matched by MAC), applies it, removes the link-local address and reads the user-data.
func TestDropletNetworkFromMetadata(t *testing.T) {
	srv, d := dropletMetadataServer(t, `{"version":1,"role":"web"}`)
	nw := &fakeNet{links: []netLink{{Name: "ens3", MAC: "52:54:00:12:34:56"}, {Name: "ens4", MAC: "52:54:00:aa:bb:cc"}}}
	b := dropletBoot(t, srv.URL, nw)
	got, src, err := b.userData(t.Context(), false)
	if err != nil || string(got) != `{"version":1,"role":"web"}` || src != "digitalocean" {
		t.Fatalf("user-data %q from %q: %v", got, src, err)
	}
	file, err := os.ReadFile(filepath.Join(b.c.Root, dropletNetworkFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MACAddress=52:54:00:12:34:56", "Address=" + d.Guest.String() + "/16", "Gateway=169.254.0.1", "DNS=169.254.10.253"} {
		if !strings.Contains(string(file), want+"\n") {
			t.Errorf("%s lacks %q:\n%s", dropletNetworkFile, want, file)
		}
	}
	if len(nw.calls) != 3 || !strings.HasPrefix(nw.calls[0], "add ens3 169.254.") || nw.calls[1] != "apply ens3" || !strings.HasPrefix(nw.calls[2], "del ens3 169.254.") ||
		strings.TrimPrefix(nw.calls[0], "add") != strings.TrimPrefix(nw.calls[2], "del") {
		t.Errorf("network calls %q: want a link-local address added to ens3, the file applied, the address removed", nw.calls)
	}
}

// TestDropletWithAddressAndNoUserData: a link that has an address already gets no link-local
// one; a droplet without user-data boots with none; a MAC the links lack matches the first link
// by name.
func TestDropletWithAddressAndNoUserData(t *testing.T) {
	srv, _ := dropletMetadataServer(t, "")
	nw := &fakeNet{links: []netLink{{Name: "eth0", MAC: "d2:00:00:00:00:01", IPv4: true}}}
	b := dropletBoot(t, srv.URL, nw)
	got, src, err := b.userData(t.Context(), false)
	if err != nil || got != nil || src != "digitalocean" {
		t.Fatalf("user-data %q from %q: %v, want none from digitalocean", got, src, err)
	}
	file, _ := os.ReadFile(filepath.Join(b.c.Root, dropletNetworkFile))
	if !strings.Contains(string(file), "Name=eth0\n") {
		t.Errorf("the network file matches no link by name:\n%s", file)
	}
	if len(nw.calls) != 1 || nw.calls[0] != "apply eth0" {
		t.Errorf("network calls %q, want only the apply", nw.calls)
	}
}

// TestDropletMetadataUnreachable: a metadata service that never answers is waited for until
// the deadline, then means no user-data (as on the other clouds), with the reason kept.
func TestDropletMetadataUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	nw := &fakeNet{links: []netLink{{Name: "ens3", MAC: "52:54:00:12:34:56"}}}
	b := dropletBoot(t, url, nw)
	b.c.Wait = 1500 * time.Millisecond
	got, _, err := b.userData(t.Context(), false)
	if err != nil || got != nil || b.mdUnreachable == nil {
		t.Fatalf("user-data %q, %v, unreachable %v: want none, and why", got, err, b.mdUnreachable)
	}
	if len(nw.calls) != 2 || !strings.HasPrefix(nw.calls[0], "add ens3 ") || !strings.HasPrefix(nw.calls[1], "del ens3 ") {
		t.Errorf("network calls %q: want the link-local address added and removed again", nw.calls)
	}
	if _, err := os.Stat(filepath.Join(b.c.Root, dropletNetworkFile)); err == nil {
		t.Error("a network file was written without metadata")
	}
}

func TestMaskBits(t *testing.T) {
	for mask, want := range map[string]int{"255.255.240.0": 20, "255.255.255.0": 24, "255.255.0.0": 16, "0.0.0.0": 0, "255.255.255.255": 32} {
		if got, err := maskBits(mask); err != nil || got != want {
			t.Errorf("maskBits(%q) = %d, %v; want %d", mask, got, err, want)
		}
	}
	for _, bad := range []string{"255.0.255.0", "x", "::1"} {
		if _, err := maskBits(bad); err == nil {
			t.Errorf("maskBits(%q): no error", bad)
		}
	}
}

// TestDropletUserDataWhileReconfiguring: networkd reconfiguring the link makes the service
// unreachable for a moment right after the apply; the user-data read is retried.
func TestDropletUserDataWhileReconfiguring(t *testing.T) {
	dropped := 0
	srv, _ := dropletMetadataServerWrapped(t, `{"version":1,"role":"web"}`, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metadata/v1/user-data" && dropped < 2 {
				dropped++
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close() // the link went away under the request
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	nw := &fakeNet{links: []netLink{{Name: "ens3", MAC: "52:54:00:12:34:56", IPv4: true}}}
	b := dropletBoot(t, srv.URL, nw)
	got, src, err := b.userData(t.Context(), false)
	if err != nil || string(got) != `{"version":1,"role":"web"}` || src != "digitalocean" || dropped != 2 {
		t.Fatalf("user-data %q from %q: %v (after %d dropped reads)", got, src, err, dropped)
	}
}
