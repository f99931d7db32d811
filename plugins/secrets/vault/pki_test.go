package vault_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// TestEnsureRoleIssuePaths: a role with certificates may update exactly its PKI issue path (and
// read its KV paths), nothing else of the PKI engine (another PKI role, sign, the CA's roles); its
// token is periodic so the instance can renew its certificates as long as it runs; Values still
// reads the KV paths only.
func TestEnsureRoleIssuePaths(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.srv.EnablePKI(t, "pki", "web", time.Hour)
	if _, err := e.root.Logical().Write("pki/roles/other", map[string]any{"allow_any_name": true}); err != nil {
		t.Fatal(err)
	}
	spec := webSpec
	spec.IssuePaths = []string{"pki/issue/web", "pki/issue/web"}
	ref, err := e.broker.EnsureRole(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := e.root.Sys().GetPolicy("drover-web")
	if strings.Count(pol, "path ") != 2 || !strings.Contains(pol, "path \"pki/issue/web\" {\n  capabilities = [\"update\"]\n}") {
		t.Errorf("policy:\n%s", pol)
	}
	w, err := e.broker.IssueSecretID(ctx, "web", nil, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sid, _, err := unwrap(t, e.srv.Addr, w)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := login(t, e.srv.Addr, ref.RoleID, sid)
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, e.srv.Addr, auth.ClientToken)
	s, err := c.Logical().Write("pki/issue/web", map[string]any{"common_name": "web.lab.example", "ttl": "60s"})
	if err != nil || s == nil || s.Data["certificate"] == nil || s.Data["private_key"] == nil {
		t.Fatalf("issuing with the role's token: %v %v", s, err)
	}
	if _, err := c.Logical().Read("secret/data/web/tls"); err != nil {
		t.Errorf("reading the KV path: %v", err)
	}
	for _, p := range []string{"pki/issue/other", "pki/sign/web", "pki/roles/web", "pki/root/generate/internal"} {
		if _, err := c.Logical().Write(p, map[string]any{"common_name": "x.example"}); status(err) != http.StatusForbidden {
			t.Errorf("write %s with the role's token: %v, want 403", p, err)
		}
	}
	self, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := self.Data["period"].(json.Number).Int64(); time.Duration(p)*time.Second != webSpec.TokenTTL {
		t.Errorf("token period %v, want %s (periodic: renewable as long as it runs)", self.Data["period"], webSpec.TokenTTL)
	}
	vals, err := e.broker.Values(ctx, "web")
	if err != nil || len(vals) != 2 {
		t.Errorf("Values: %d values, %v; want the two of secret/data/web/tls", len(vals), err)
	}

	// Certificates only: no KV path at all; and dropping the certificates makes the token
	// non-periodic again.
	if _, err := e.broker.EnsureRole(ctx, secrets.RoleSpec{Role: "web", IssuePaths: []string{"pki/issue/web"}}); err != nil {
		t.Errorf("a role with certificates only: %v", err)
	}
	if _, err := e.broker.EnsureRole(ctx, secrets.RoleSpec{Role: "web", IssuePaths: []string{"pki/issue/*"}}); err == nil {
		t.Error("a glob issue path was accepted")
	}
	if _, err := e.broker.EnsureRole(ctx, webSpec); err != nil {
		t.Fatal(err)
	}
	r, _ := e.root.Logical().Read("auth/approle/role/drover-web")
	if p, _ := r.Data["token_period"].(json.Number).Int64(); p != 0 {
		t.Errorf("token_period %d after the certificates went, want 0", p)
	}
}
