package health

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/drover-dev/drover/fleet"
)

// A Vault that speaks HTTPS: the vault check with scheme "https" verifies it against ca_file, or
// skips verification when asked, and refuses a certificate it cannot verify.
func TestVaultCheckOverHTTPS(t *testing.T) {
	var sealed atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sys/health" {
			http.NotFound(w, r)
			return
		}
		if sealed.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"initialized":true,"sealed":true,"standby":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"initialized":true,"sealed":false,"standby":false}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")

	ca := filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(hc fleet.HealthCheck) Prober {
		t.Helper()
		hc.Type, hc.Port = "vault", 8200
		p, err := newVault(hc, &net.Dialer{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	verified := check(fleet.HealthCheck{Scheme: "https", CAFile: ca})
	if err := probeOnce(t, verified, addr); err != nil {
		t.Fatalf("verified against ca_file: %v", err)
	}
	skipping := check(fleet.HealthCheck{Scheme: "https", TLSSkipVerify: true})
	if err := probeOnce(t, skipping, addr); err != nil {
		t.Fatalf("with tls_skip_verify: %v", err)
	}
	if err := probeOnce(t, check(fleet.HealthCheck{Scheme: "https"}), addr); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate no known CA signed: %v, want a certificate error", err)
	}
	if err := probeOnce(t, check(fleet.HealthCheck{}), addr); err == nil {
		t.Error("plain http to an https Vault passed")
	}
	sealed.Store(true)
	if err := probeOnce(t, verified, addr); err == nil || !strings.Contains(err.Error(), "is sealed") {
		t.Errorf("a sealed Vault over https: %v", err)
	}

	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newVault(fleet.HealthCheck{Type: "vault", Scheme: "https", CAFile: notPEM}, &net.Dialer{}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a ca_file without a certificate: %v", err)
	}
	if _, err := newVault(fleet.HealthCheck{Type: "vault", Scheme: "https", CAFile: filepath.Join(t.TempDir(), "gone.pem")}, &net.Dialer{}); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("a missing ca_file: %v", err)
	}
	if got := Describe(fleet.HealthCheck{Type: "vault", Port: 8200, Scheme: "https"}); got != "vault https :8200" {
		t.Errorf("Describe: %q", got)
	}
}
