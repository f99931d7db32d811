package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// readChain reads NAME.crt and NAME.key from dir, checks that the key is the certificate's and that
// the chain verifies against ca for name, and returns the leaf.
func readChain(t *testing.T, dir, name string, ca *x509.CertPool, dnsName string) *x509.Certificate {
	t.Helper()
	chainPEM, keyPEM := mustRead(t, filepath.Join(dir, name+".crt")), mustRead(t, filepath.Join(dir, name+".key"))
	pair, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		t.Fatalf("%s.crt and %s.key do not make a pair: %v", name, name, err)
	}
	if len(pair.Certificate) != 2 {
		t.Errorf("%s.crt holds %d certificates, want the certificate and its issuing CA", name, len(pair.Certificate))
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca, Intermediates: inter, DNSName: dnsName}); err != nil {
		t.Errorf("%s.crt does not verify against the PKI's CA for %s: %v", name, dnsName, err)
	}
	for _, f := range []string{name + ".crt", name + ".key"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o440 {
			t.Errorf("%s: %v %v, want mode 0440", f, fi.Mode(), err)
		}
	}
	return leaf
}

// TestCertificatesFromVaultPKI: drover-boot issues the certificate from a real Vault's PKI engine
// with the instance's own token, its policy granting only pki/issue/site; writes key and chain with
// the owner and mode given; puts the instance's address (its route's source to Vault, 127.0.0.1
// here) where ${instance.address} stood; renews it at two thirds of its 30s lifetime, writing the
// new one in place and reloading the named units; and revokes the token at the end. A role whose
// policy lacks the issue path fails its boot and leaves no file.
func TestCertificatesFromVaultPKI(t *testing.T) {
	l := newLab(t)
	pki := l.srv.EnablePKI(t, "pki", "site", time.Hour)
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM([]byte(pki.CAPEM)) {
		t.Fatal("the PKI's CA is not PEM")
	}
	ref, err := l.broker.EnsureRole(context.Background(), secrets.RoleSpec{Role: "site", IssuePaths: []string{"pki/issue/site"}, TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l.refs["site"] = ref
	cert := bootdata.Certificate{
		Name: "tls", PKIRole: "site", CommonName: "site.lab.example", AltNames: []string{"www.site.lab.example"},
		IPSANs: []string{bootdata.InstanceAddress}, TTL: 30, Owner: "0:0", Mode: 0o440, Reload: []string{"nginx"},
	}

	t.Run("issued and renewed", func(t *testing.T) {
		ud, _ := l.issue("site", time.Minute)
		ud.Certificates = []bootdata.Certificate{cert}
		m := newMachine(t, "site").withUserData(l.userData(ud))
		var mu sync.Mutex
		var reloads [][]string
		m.cfg.Reload = func(_ context.Context, units []string) error {
			mu.Lock()
			defer mu.Unlock()
			reloads = append(reloads, units)
			return nil
		}
		start := time.Now()
		cancel, done := m.renewInBackground()
		st := waitStatus(t, m, func(st status) bool { return st.State != "" })
		if st.State != "ok" || len(st.Certificates) != 1 {
			_, raw := m.status()
			t.Fatalf("status %s; stderr %s", raw, m.stderr.String())
		}
		t.Logf("booted with the certificate in %s", time.Since(start).Round(time.Millisecond))
		first := readChain(t, m.secretsDir(), "tls", ca, "www.site.lab.example")
		if first.Subject.CommonName != "site.lab.example" || !slices.Contains(first.DNSNames, "www.site.lab.example") ||
			!slices.ContainsFunc(first.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.1")) }) {
			t.Errorf("names: CN %s, DNS %v, IP %v; want site.lab.example, www.site.lab.example and 127.0.0.1", first.Subject.CommonName, first.DNSNames, first.IPAddresses)
		}
		if life := first.NotAfter.Sub(start); life > 31*time.Second || life < 25*time.Second {
			t.Errorf("certificate lives %s from the boot, want the 30s asked for", life)
		}
		if st.Certificates[0].Serial != serialOf(first) || st.Certificates[0].Renewals != 0 {
			t.Errorf("status certificates %+v, want serial %s", st.Certificates, serialOf(first))
		}

		// Renewed at two thirds of 30s: a new serial in place, and nginx reloaded after it.
		st = waitStatus(t, m, func(st status) bool { return len(st.Certificates) == 1 && st.Certificates[0].Renewals >= 1 })
		renewedAfter := time.Since(start)
		second := readChain(t, m.secretsDir(), "tls", ca, "site.lab.example")
		if serialOf(second) == serialOf(first) || st.Certificates[0].Serial != serialOf(second) {
			t.Errorf("after the renewal: serial %s (first %s), status %+v", serialOf(second), serialOf(first), st.Certificates)
		}
		if renewedAfter < 18*time.Second || renewedAfter > 28*time.Second {
			t.Errorf("renewed %s after the boot, want about 20s (two thirds of 30s)", renewedAfter)
		}
		mu.Lock()
		if len(reloads) != 1 || !slices.Equal(reloads[0], []string{"nginx"}) {
			t.Errorf("reloads %v, want [[nginx]] once", reloads)
		}
		mu.Unlock()
		if !strings.Contains(m.stdout.String(), "certificate tls renewed: serial "+serialOf(second)) || !strings.Contains(m.stdout.String(), "reloaded nginx") {
			t.Errorf("stdout %q", m.stdout.String())
		}
		t.Logf("renewed %s after the boot", renewedAfter.Round(time.Millisecond))
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("exit %d; stderr %s", code, m.stderr.String())
		}
		if st, _ := m.status(); st.Vault != "revoked" || l.tokenAlive(st.TokenAccessor) {
			t.Errorf("after the stop: vault %s", st.Vault)
		}
		key := strings.TrimSpace(string(mustRead(t, filepath.Join(m.secretsDir(), "tls.key"))))
		blk, _ := pem.Decode([]byte(key))
		noLeak(t, m.outputs(), append(l.forbidden, key, string(blk.Bytes[:16]))...)
		for _, o := range m.outputs() {
			if strings.Contains(o, "PRIVATE KEY") {
				t.Errorf("output holds a private key: %q", o)
			}
		}
	})

	t.Run("policy without the issue path", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...) // web reads kv paths, issues nothing
		other := cert
		other.Name = "site"
		ud.Certificates = []bootdata.Certificate{other}
		m := newMachine(t, "web").withUserData(l.userData(ud))
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d, want %d", code, exitFailed)
		}
		st, _ := m.status()
		if !strings.Contains(st.Reason, "certificate site: permission denied at pki/issue/site") {
			t.Errorf("reason %q", st.Reason)
		}
		if left, _ := os.ReadDir(m.secretsDir()); len(left) != 0 {
			t.Errorf("files left after the failed boot: %v", left)
		}
		if l.tokenAlive(st.TokenAccessor) {
			t.Error("the token of the failed boot is alive")
		}
	})
}

func serialOf(c *x509.Certificate) string {
	h := strings.ToLower(c.SerialNumber.Text(16))
	if len(h)%2 == 1 {
		h = "0" + h
	}
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
