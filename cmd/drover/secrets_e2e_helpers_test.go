//go:build e2e && lab

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// webTLS is a self-signed certificate and its key for www.lab.example and the failover address.
type webTLS struct {
	certPEM, keyPEM string
	pool            *x509.CertPool
}

func newWebTLS(t *testing.T, addr string) webTLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "www.lab.example"},
		DNSNames:     []string{"www.lab.example"},
		IPAddresses:  []net.IP{net.ParseIP(addr)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return webTLS{
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
		pool:    pool,
	}
}

// keyBody is the base64 body of a PEM key: what would betray it in a file, whatever the line breaks.
func keyBody(keyPEM string) []string {
	var out []string
	for _, l := range strings.Split(keyPEM, "\n") {
		if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func randomPassword(t *testing.T) string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

// startLabVault starts a real Vault dev server as the operator's one-time setup leaves it: KV
// version 2 at kv/, AppRole enabled, and a controller token with only drover vault policy's policy.
// It returns the server, a root client and the controller's token.
func startLabVault(t *testing.T) (*vaulttest.Server, *api.Client, string) {
	t.Helper()
	srv := vaulttest.Start(t)
	root := vaultAs(t, srv.Addr, srv.RootToken)
	if err := root.Sys().Mount("kv", &vaultMountKV2); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &vaultAuthAppRole); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy(vault.ControllerPolicyName, vault.ControllerPolicy("approle")); err != nil {
		t.Fatal(err)
	}
	ct, err := root.Auth().Token().Create(&vaultTokenRequest)
	if err != nil {
		t.Fatal(err)
	}
	return srv, root, ct.Auth.ClientToken
}

// vaultAs is a Vault client with token.
func vaultAs(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func mustWrite(t *testing.T, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

// statusOf is the HTTP status of a failed Vault call, 0 when there is none.
func statusOf(err error) int {
	if re, ok := err.(*api.ResponseError); ok {
		return re.StatusCode
	}
	return 0
}

// httpsGet asks https://addr/ with the test's CA for name, with basic auth when user is not empty.
func httpsGet(addr, name string, pool *x509.CertPool, user, pass string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: name},
	}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// liveInstances are the lab's instances that are not terminated and carry every label of sel.
func liveInstances(t *testing.T, lab *qemu.Provider, sel compute.Selector) []compute.Instance {
	t.Helper()
	list, err := lab.Instances(context.Background(), sel)
	if err != nil {
		t.Fatal(err)
	}
	var live []compute.Instance
	for _, i := range list {
		if i.State != compute.Terminated {
			live = append(live, i)
		}
	}
	return live
}

// instanceImage is the image a lab instance was launched from, as its record says.
func instanceImage(t *testing.T, inst compute.Instance) compute.Image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(inst.Console), "record.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Image struct {
			Identity string `json:"identity"`
			Path     string `json:"path"`
		} `json:"image"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return compute.Image{Identity: rec.Image.Identity, Path: rec.Image.Path}
}

// waitConsole waits until the instance's serial console holds want, and returns the console.
func waitConsole(t *testing.T, inst compute.Instance, want string, deadline time.Duration) string {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		b, _ := os.ReadFile(inst.Console)
		if bytes.Contains(b, []byte(want)) {
			return string(b)
		}
		if time.Now().After(end) {
			t.Fatalf("%s: the console does not show %q after %s; it ends:\n%s", inst.ID, want, deadline, tail(string(b), 30))
		}
		time.Sleep(time.Second)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// leak is one place a secret value was found.
type leak struct{ where, what string }

// grepTree looks for every needle in every regular file under dir.
func grepTree(t *testing.T, dir string, needles map[string]string) []leak {
	t.Helper()
	var out []leak
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		// A qcow2 image is converted from the raw disk beside it (which is read): it holds nothing
		// the raw one does not, and reading both doubles the largest part of the grep.
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(p, ".qcow2") && fileExists(strings.TrimSuffix(p, ".qcow2")+".raw") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for what, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				out = append(out, leak{p, what})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// grepArgv looks for every needle in the command line of every process of this machine.
func grepArgv(needles map[string]string) (procs int, leaks []leak) {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		procs++
		for what, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				leaks = append(leaks, leak{p + " " + strings.ReplaceAll(string(b[:min(len(b), 60)]), "\x00", " "), what})
			}
		}
	}
	return procs, leaks
}

var (
	vaultMountKV2     = api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}
	vaultAuthAppRole  = api.EnableAuthOptions{Type: "approle"}
	vaultTokenRequest = api.TokenCreateRequest{Policies: []string{"drover-controller"}, NoDefaultPolicy: true, TTL: "1h"}

	// The vault role's transit seal: a key, a policy that may only use it, and a periodic token
	// with it (examples/homelab/vault/README.md).
	vaultMountTransit       = api.MountInput{Type: "transit"}
	vaultUnsealPolicy       = `path "transit/encrypt/drover-vault-unseal" { capabilities = ["update"] }` + "\n" + `path "transit/decrypt/drover-vault-unseal" { capabilities = ["update"] }` + "\n"
	vaultUnsealTokenRequest = api.TokenCreateRequest{Policies: []string{"drover-vault-unseal"}, NoDefaultPolicy: true, NoParent: true, Period: "24h"}
)

// setupTransitUnseal is the operator's one-time transit setup for the vault role
// (examples/homelab/vault/README.md): a key, a policy that may only use it, and a periodic token
// with that policy, which it returns.
func setupTransitUnseal(t *testing.T, root *api.Client) string {
	t.Helper()
	if err := root.Sys().Mount("transit", &vaultMountTransit); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "transit/keys/drover-vault-unseal", nil)
	if err := root.Sys().PutPolicy("drover-vault-unseal", vaultUnsealPolicy); err != nil {
		t.Fatal(err)
	}
	tt, err := root.Auth().Token().Create(&vaultUnsealTokenRequest)
	if err != nil {
		t.Fatal(err)
	}
	return tt.Auth.ClientToken
}

// getOnce asks http://addr/ once, without retrying: "error: ..." when nothing answers.
func getOnce(addr string) string {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}
