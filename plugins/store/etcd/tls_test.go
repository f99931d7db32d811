package etcd_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store/etcd"
)

// certs writes a CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files
// ca.pem, server.pem, server-key.pem, client.pem and client-key.pem in dir.
func certs(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "drover test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	for i, name := range []string{"server", "client"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "drover " + name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		write(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", keyDER)
	}
}

func write(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSClientCertificate runs the store against an etcd that serves https and requires client
// certificates, with the tls block's files relative to the fleet file.
func TestTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	certs(t, filepath.Join(dir))
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	url := startEtcdWith(t, "https", hc,
		"--cert-file", filepath.Join(dir, "server.pem"), "--key-file", filepath.Join(dir, "server-key.pem"),
		"--trusted-ca-file", filepath.Join(dir, "ca.pem"), "--client-cert-auth")

	f := etcd.Factory()
	openWith := func(tlsBlock *etcd.TLSConfig) (*etcd.Config, error) {
		cfg, err := f.NewConfig(lookup(map[string]string{"DROVER_ETCD_ENDPOINTS": url}))
		c := cfg.(*etcd.Config)
		c.TLS, c.RequestTimeout = tlsBlock, "2s"
		return c, err
	}
	cfg, err := openWith(&etcd.TLSConfig{CACert: "ca.pem", Cert: "client.pem", Key: "client-key.pem"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Open(t.Context(), cfg, config.Env{FleetDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Put(t.Context(), "k", []byte("over tls"), 0)
	if err != nil {
		t.Fatalf("Put over TLS: %v", err)
	}
	if it, err := s.Get(t.Context(), "k"); err != nil || string(it.Value) != "over tls" || it.Version != v {
		t.Fatalf("Get over TLS = %+v, %v", it, err)
	}

	// Without a client certificate the server refuses the connection.
	cfg, _ = openWith(&etcd.TLSConfig{CACert: "ca.pem"})
	anon, err := f.Open(t.Context(), cfg, config.Env{FleetDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	_, err = anon.Get(t.Context(), "k")
	t.Logf("without a client certificate: %v", err)
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Errorf("Get without a client certificate = %v, want an error naming %s", err, url)
	}
}

// TestPasswordAuth runs the store against an etcd with authentication on, the user and password
// from ETCD_USERNAME and ETCD_PASSWORD.
func TestPasswordAuth(t *testing.T) {
	url := startEtcd(t)
	raw := rawClient(t, url)
	ctx := t.Context()
	if _, err := raw.UserAdd(ctx, "root", "root-pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	f := etcd.Factory()
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"root-pw", true}, {"wrong", false}} {
		cfg, err := f.NewConfig(lookup(map[string]string{"DROVER_ETCD_ENDPOINTS": url, "ETCD_USERNAME": "root", "ETCD_PASSWORD": tc.password}))
		if err != nil {
			t.Fatal(err)
		}
		cfg.(*etcd.Config).RequestTimeout = "2s"
		s, err := f.Open(ctx, cfg, config.Env{})
		if err == nil {
			_, err = s.Put(ctx, "k-"+tc.password, []byte("v"), 0)
			s.Close()
		}
		t.Logf("password %q: %v", tc.password, err)
		if (err == nil) != tc.ok {
			t.Errorf("password %q: %v", tc.password, err)
		}
		if err != nil && strings.Contains(err.Error(), tc.password) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
