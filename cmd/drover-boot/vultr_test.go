package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
)

// vultrMetadataServer creates an instance in the cloud lab's fake Vultr (through its API), in a
// VPC when vpc is not empty, and serves that instance's metadata service, the one instances
// booted by vultrlab get: drover-boot and the fake must agree on the document.
func vultrMetadataServer(t *testing.T, userData, vpc string) *httptest.Server {
	t.Helper()
	c := vultrlab.New(t, vultrlab.Options{})
	snap := c.AddSnapshot(t, "web", make([]byte, 1<<20))
	attach := "[]"
	if vpc != "" {
		attach = fmt.Sprintf("[%q]", vpc)
	}
	body := fmt.Sprintf(`{"region":%q,"plan":"vc2-1c-1gb","snapshot_id":%q,"user_data":%q,"attach_vpc":%s}`, c.Region(), snap, userData, attach)
	req, _ := http.NewRequest(http.MethodPost, c.URL()+"/v2/instances", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.APIKey())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("creating the instance: %s", res.Status)
	}
	srv := httptest.NewServer(c.Metadata(c.Instances()[0].ID))
	t.Cleanup(srv.Close)
	return srv
}

func vultrBoot(t *testing.T, url string, nw dropletNet) *boot {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sys/class/dmi/id/sys_vendor"), []byte("Vultr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	return &boot{c: config{Root: root, MetadataURL: url, FwCfgPath: none, Net: nw, Wait: 5 * time.Second, Stdout: &out, Stderr: &out}}
}

// TestVultrVPCInterfaceFromMetadata: on a Vultr instance in a VPC, drover-boot writes the
// networkd file of the VPC interface (matched by the metadata's MAC, the address static, no
// DHCP), applies it, and reads the user-data from /latest/user-data.
func TestVultrVPCInterfaceFromMetadata(t *testing.T) {
	srv := vultrMetadataServer(t, "eyJ2ZXJzaW9uIjoxLCJyb2xlIjoid2ViIn0=", "cb676a46-66fd-4dfb-b839-443f2e6c0b60")
	resp, err := http.Get(srv.URL + "/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var md vultrMetadata
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if len(md.Interfaces) != 2 || md.Interfaces[1].NetworkType != "private" {
		t.Fatalf("the fake's metadata has interfaces %+v, want a public and a private one", md.Interfaces)
	}
	priv := md.Interfaces[1]
	nw := &fakeNet{links: []netLink{{Name: "enp1s0", MAC: md.Interfaces[0].MAC, IPv4: true}, {Name: "enp6s0", MAC: strings.ToUpper(priv.MAC)}}}
	b := vultrBoot(t, srv.URL, nw)
	got, src, err := b.userData(t.Context(), false)
	if err != nil || string(got) != `{"version":1,"role":"web"}` || src != "vultr" {
		t.Fatalf("user-data %q from %q: %v", got, src, err)
	}
	path := filepath.Join(b.c.Root, vultrNetworkDir, "10-drover-vultr-"+strings.ReplaceAll(priv.MAC, ":", "")+".network")
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MACAddress=" + priv.MAC, "Address=" + priv.IPv4.Address + "/20", "DHCP=no"} {
		if !strings.Contains(string(file), want+"\n") {
			t.Errorf("%s lacks %q:\n%s", path, want, file)
		}
	}
	if strings.Join(nw.calls, ";") != "apply enp6s0" {
		t.Errorf("network calls %q, want only the VPC link applied", nw.calls)
	}
}

// TestVultrWithoutVPC: an instance in no VPC gets no networkd file; one whose VPC interface has
// no link fails the boot rather than run without its VPC address.
func TestVultrWithoutVPC(t *testing.T) {
	srv := vultrMetadataServer(t, "", "")
	nw := &fakeNet{links: []netLink{{Name: "enp1s0", IPv4: true}}}
	b := vultrBoot(t, srv.URL, nw)
	if got, src, err := b.userData(t.Context(), false); err != nil || got != nil || src != "vultr" {
		t.Fatalf("user-data %q from %q: %v; want none from vultr", got, src, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(b.c.Root, vultrNetworkDir)); len(ents) != 0 || len(nw.calls) != 0 {
		t.Errorf("files %v and calls %q for an instance in no VPC", ents, nw.calls)
	}

	srv = vultrMetadataServer(t, "", "cb676a46-66fd-4dfb-b839-443f2e6c0b60")
	b = vultrBoot(t, srv.URL, nw)
	if _, _, err := b.userData(t.Context(), false); err == nil || !strings.Contains(err.Error(), "no link has MAC") {
		t.Fatalf("a VPC interface without its link: %v, want an error naming the MAC", err)
	}
}
