package vaulttest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// PKI is a PKI secrets engine that EnablePKI set up: a root CA of its own and one role.
type PKI struct {
	Mount, Role string
	// CAPEM is the root CA's certificate: what every certificate the role issues chains to.
	CAPEM string
}

// EnablePKI mounts the PKI secrets engine at mount, generates a root CA in it (common name
// "drover test CA") and writes role: it issues for any name and IP, for at most maxTTL.
func (s *Server) EnablePKI(t testing.TB, mount, role string, maxTTL time.Duration) PKI {
	t.Helper()
	s.root(t, http.MethodPost, "sys/mounts/"+mount, map[string]any{"type": "pki", "config": map[string]any{"max_lease_ttl": "87600h"}})
	var gen struct {
		Data struct {
			Certificate string `json:"certificate"`
		} `json:"data"`
	}
	s.rootJSON(t, http.MethodPost, mount+"/root/generate/internal", map[string]any{"common_name": "drover test CA", "ttl": "87600h"}, &gen)
	if gen.Data.Certificate == "" {
		t.Fatalf("vaulttest: %s/root/generate/internal returned no certificate", mount)
	}
	s.root(t, http.MethodPost, mount+"/roles/"+role, map[string]any{
		"allow_any_name": true, "allow_ip_sans": true, "enforce_hostnames": false,
		"max_ttl": int(maxTTL / time.Second), "key_type": "ec", "key_bits": 256,
	})
	return PKI{Mount: mount, Role: role, CAPEM: gen.Data.Certificate}
}

// rootJSON is root with the answer's JSON decoded into out (unless out is nil).
func (s *Server) rootJSON(t testing.TB, method, path string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.Addr+"/v1/"+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("vaulttest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("vaulttest: %s %s: %s: %s", method, path, resp.Status, data)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("vaulttest: %s %s: %v", method, path, err)
	}
}
