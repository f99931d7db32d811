package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/dns"
)

// everyTypeFleet has one block of every provider type that is available; the test fails when a
// type is registered that it does not open, so a new provider is opened here from its first day.
const everyTypeFleet = `
compute "qemu" "lab" {}
compute "aws" "cloud" {
  region = "us-east-1"
}
ip "awseip" "eip" {
  allocation_id = "ALLOCATION_ID"
  compute       = "cloud"
}
compute "vultr" "vc" {
  region           = "VULTR_REGION"
  storage_endpoint = "https://ewr1.vultrobjects.com"
  bucket           = "drover-images"
}
ip "vultr" "vip" {
  address = "VULTR_RESERVED_IP"
  compute = "vc"
}
dns "rfc2136" "knot" {
  server   = "127.0.0.1:5353"
  zone     = "lab.example."
  key_name = "drover"
}
dns "cloudflare" "cf" {
  zone    = "example.com"
  api_url = "CLOUDFLARE_URL"
}
dns "route53" "r53" {
  zone           = "example.org."
  hosted_zone_id = "Z0123456789ABCDEFGHIJ"
}
dns "digitalocean" "do" {
  zone    = "example.net"
  api_url = "DIGITALOCEAN_URL"
}
dns "zonefile" "nsd" {
  zone        = "home.example."
  path        = "home.example.zone"
  nameservers = ["127.0.0.1:5354"]
}
ip "loopback" "front" {
  address = "127.0.0.100"
}
compute "device" "home" {
  hosts     = ["127.0.0.1:9"]
  host_keys = { "127.0.0.1:9" = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8" }
}
compute "digitalocean" "droplets" {
  region          = "nyc3"
  api_url         = "DOLAB_URL"
  spaces_bucket   = "drover-images"
  spaces_endpoint = "http://127.0.0.1:9/"
}
ip "digitalocean" "reserved" {
  address = "RESERVED_IP"
  compute = "droplets"
}
store "local" {
  path = "state/team.db"
}
vault {
  address = "http://127.0.0.1:8200"
}
`

// otherStoreFleets are fleets with a store block of each store type but everyTypeFleet's. Opening
// an etcd store without a password does not contact the cluster (its first operation does), so
// nothing listens at its endpoint here.
var otherStoreFleets = map[string]string{
	"etcd": `
store "etcd" {
  endpoints    = ["http://127.0.0.1:2379"]
  prefix       = "team/"
  dial_timeout = "2s"
}
`,
}

// TestEveryProviderTypeOpens opens one block of every available registered type through the
// registry, the way commands do, so the wiring itself (factories, configs, what each provider is
// opened with) is tested without a platform behind it.
func TestEveryProviderTypeOpens(t *testing.T) {
	cf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/zones" || r.URL.Query().Get("name") != "example.com" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":[{"id":"023e105f4ecef8ad9ca31a8372d0c353","name":"example.com","status":"active"}],"result_info":{"page":1,"per_page":50,"count":1,"total_count":1,"total_pages":1}}`))
	}))
	defer cf.Close()
	do := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/domains/example.net" || r.Header.Get("Authorization") != "Bearer test-token" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"domain":{"name":"example.net","ttl":1800,"zone_file":""}}`))
	}))
	defer do.Close()

	ec2Cloud := awslab.New(t, awslab.Options{})
	allocation, eip := allocateEIP(t, ec2Cloud)
	doCloud := dolab.New(t, dolab.Options{Token: "test-token"}) // the DNS fake's token too: one DIGITALOCEAN_TOKEN
	reserved := doCloud.CreateReservedIP()
	vultrCloud := vultrlab.New(t, vultrlab.Options{})
	vip := reserveIP(t, vultrCloud)

	dir := t.TempDir()
	path := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(path, []byte(strings.NewReplacer("CLOUDFLARE_URL", cf.URL+"/", "DIGITALOCEAN_URL", do.URL+"/", "ALLOCATION_ID", allocation,
		"DOLAB_URL", doCloud.URL(), "RESERVED_IP", reserved.String(),
		"VULTR_REGION", vultrCloud.Region(), "VULTR_RESERVED_IP", vip.String()).Replace(everyTypeFleet)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DROVER_TSIG_SECRET": "c2VjcmV0", "CLOUDFLARE_API_TOKEN": "test-token", "DIGITALOCEAN_TOKEN": "test-token", "VAULT_TOKEN": "test-token",
		"SPACES_ACCESS_KEY_ID": "test-key", "SPACES_SECRET_ACCESS_KEY": "test-secret",
		"VULTR_API_KEY": vultrCloud.APIKey(), "VULTR_API_URL": vultrCloud.URL(),
		"VULTR_OBJECT_STORAGE_ACCESS_KEY": "test-access-key", "VULTR_OBJECT_STORAGE_SECRET_KEY": "test-secret-key",
		"DEVICE_SSH_KEY": deviceKey(t)}
	// The AWS SDK reads its chain (keys, region, endpoints) from the process's environment itself.
	for _, kv := range ec2Cloud.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
		env[k] = v
	}
	var out bytes.Buffer
	a := newApp(&out, &out, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	reg := a.registry()
	f, diags := fleet.Load(path, fleet.Options{Providers: reg, LookupEnv: a.env})
	if diags.HasErrors() {
		var b bytes.Buffer
		diags.WriteText(&b)
		t.Fatalf("the fleet is not valid:\n%s", b.String())
	}
	state := filepath.Join(dir, ".drover")
	p := a.newProviders(f, state)
	ctx := context.Background()

	opened := map[string]any{}
	for _, blk := range f.Compute {
		c, err := p.Compute(ctx, blk.Name)
		opened[blk.Kind+"/"+blk.Type], _ = c, check(t, blk, err)
	}
	for _, blk := range f.DNS {
		d, err := p.DNS(ctx, blk.Name)
		opened[blk.Kind+"/"+blk.Type], _ = d, check(t, blk, err)
	}
	for _, blk := range f.IP {
		i, addr, err := p.IP(ctx, blk.Name)
		opened[blk.Kind+"/"+blk.Type], _ = i, check(t, blk, err)
		if want := map[string]netip.Addr{"loopback": netip.MustParseAddr("127.0.0.100"), "awseip": eip, "digitalocean": reserved, "vultr": vip}[blk.Type]; addr != want {
			t.Errorf("ip %q: address %s, want %s", blk.Name, addr, want)
		}
	}
	b, err := p.Secrets(ctx)
	opened[fleet.KindSecrets+"/"+f.Vault.Type], _ = b, check(t, f.Vault, err)
	st, err := a.openStore(ctx, f, state)
	opened[fleet.KindStore+"/"+f.Store.Type], _ = st, check(t, f.Store, err)
	if st != nil {
		st.Close()
		if _, err := os.Stat(filepath.Join(dir, "state", "team.db")); err != nil {
			t.Errorf("the store block's relative path is not relative to the fleet file: %v", err)
		}
	}

	// A fleet has one store block: the other store types open from fleets of their own.
	for typ, fleetText := range otherStoreFleets {
		other := filepath.Join(dir, typ+".hcl")
		if err := os.WriteFile(other, []byte(fleetText), 0o644); err != nil {
			t.Fatal(err)
		}
		of, diags := fleet.Load(other, fleet.Options{Providers: reg, LookupEnv: a.env})
		if diags.HasErrors() || of.Store == nil || of.Store.Type != typ {
			var b bytes.Buffer
			diags.WriteText(&b)
			t.Fatalf("the store %q fleet is not valid:\n%s", typ, b.String())
		}
		st, err := a.openStore(ctx, of, state)
		opened[fleet.KindStore+"/"+typ], _ = st, check(t, of.Store, err)
		if st != nil {
			st.Close()
		}
	}

	for _, e := range reg.Entries() {
		v, ok := opened[e.Kind+"/"+e.Type]
		switch {
		case !e.Available:
			if ok {
				t.Errorf("%s %q is not available, yet it opened", e.Kind, e.Type)
			}
		case !ok || v == nil:
			t.Errorf("%s %q is registered and available, but the test fleet has no block of it: add one", e.Kind, e.Type)
		}
	}

	// What used to be special cases in cmd are capabilities the providers declare.
	if _, ok := opened["compute/aws"].(compute.Publisher); !ok {
		t.Error("aws does not publish images (AMIs)")
	}
	if _, ok := opened["compute/vultr"].(compute.Publisher); !ok {
		t.Error("vultr does not publish images (snapshots)")
	}
	if _, ok := opened["compute/device"].(compute.Slots); !ok {
		t.Error("device does not update slots in place")
	}
	if _, ok := opened["compute/qemu"].(compute.PortForwarder); !ok {
		t.Error("qemu does not offer port forwards to the loopback address")
	}
	if v, ok := opened["dns/rfc2136"].(dns.Verified); !ok || strings.Join(v.VerifyAt(), ",") != "127.0.0.1:5353" {
		t.Error("rfc2136 is not verified at its primary")
	}
	if v, ok := opened["dns/zonefile"].(dns.Verified); !ok || strings.Join(v.VerifyAt(), ",") != "127.0.0.1:5354" {
		t.Error("zonefile is not verified at its nameservers")
	}
	if _, ok := opened["dns/cloudflare"].(dns.Verified); ok {
		t.Error("cloudflare claims servers of its own to verify at; its zone's NS records are the truth")
	}
	if _, ok := opened["dns/digitalocean"].(dns.Verified); ok {
		t.Error("digitalocean claims servers of its own to verify at; its zone's NS records are the truth")
	}
	again, _ := p.Compute(ctx, "lab")
	if again != opened["compute/qemu"] {
		t.Error("a block was opened twice")
	}
	if addr, from := instanceRoute("http://127.0.0.1:8200", again); addr != "http://10.0.2.2:8200" || len(from) != 1 || from[0].String() != "127.0.0.1/32" {
		t.Errorf("a lab VM reaches the host's Vault at %s from %v", addr, from)
	}
	ep := endpoint{server: "http://127.0.0.1:8200", instances: "https://vault.internal:8200"}
	if addr, from := instanceVault(ep, again); addr != "https://vault.internal:8200" || from != nil {
		t.Errorf("with instance_address, a lab VM reaches Vault at %s from %v, want the block's address and no route", addr, from)
	}
	ep.instances = ""
	if addr, _ := instanceVault(ep, again); addr != "http://10.0.2.2:8200" {
		t.Errorf("without instance_address, a lab VM reaches Vault at %s, want the lab's route", addr)
	}
}

func check(t *testing.T, blk *fleet.Provider, err error) error {
	t.Helper()
	if err != nil {
		t.Errorf("%s %q %q: %v", blk.Kind, blk.Type, blk.Name, err)
	}
	return err
}

// TestRegistryRefusesDuplicates: one type registered twice in a kind is a startup panic.
func TestRegistryRefusesDuplicates(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"qemu" is registered twice`) {
			t.Errorf("recovered %v, want a panic naming the duplicate", r)
		}
	}()
	qemuAgain := all.Builtin().Compute[0]
	all.New(func(string) (string, bool) { return "", false }, all.Providers{Compute: []compute.Factory{qemuAgain}})
}

// endpoint is a secrets.Endpoint as a vault block with and without instance_address gives it.
type endpoint struct{ server, instances string }

func (e endpoint) ServerAddress() string       { return e.server }
func (e endpoint) AddressForInstances() string { return e.instances }
func (e endpoint) IAMServerID() string         { return "" }

// allocateEIP makes an Elastic IP in the fake EC2, as an operator does once before naming it in an
// ip "awseip" block, and returns its allocation ID and address.
func allocateEIP(t *testing.T, c *awslab.Cloud) (string, netip.Addr) {
	t.Helper()
	client := ec2.New(ec2.Options{Region: c.Region(), BaseEndpoint: aws.String(c.EC2URL()),
		Credentials: awscreds.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")})
	out, err := client.AllocateAddress(t.Context(), &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.AllocationId), netip.MustParseAddr(aws.ToString(out.PublicIp))
}

// deviceKey is a new SSH private key in OpenSSH's PEM form, as DEVICE_SSH_KEY holds one.
func deviceKey(t *testing.T) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}
