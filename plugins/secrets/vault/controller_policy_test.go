package vault_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/vault"
)

var policyPathRE = regexp.MustCompile(`(?m)^path "([^"]+)" \{$`)

// TestControllerPolicyText: the policy names only the auth methods list, the drover-* policies and
// the mount's drover-* AppRoles; no secrets engine path, no sudo, no delete.
func TestControllerPolicyText(t *testing.T) {
	for mount, prefix := range map[string]string{"": "auth/approle/", "approle": "auth/approle/", "/drover/approle/": "auth/drover/approle/"} {
		pol := vault.ControllerPolicy(mount)
		paths := policyPathRE.FindAllStringSubmatch(pol, -1)
		var got []string
		for _, m := range paths {
			got = append(got, m[1])
		}
		want := []string{"sys/auth", "sys/policies/acl/drover-*", prefix + "role/drover-*"}
		if !slices.Equal(got, want) {
			t.Errorf("ControllerPolicy(%q) paths %q, want %q", mount, got, want)
		}
		if strings.Count(pol, "path ") != len(want) {
			t.Errorf("ControllerPolicy(%q) has paths the check did not parse:\n%s", mount, pol)
		}
		for _, bad := range []string{`"secret/`, `"kv/`, `"sudo"`, `"delete"`, `"list"`, `"sys/policies/acl/*"`, `"auth/token/`} {
			if strings.Contains(pol, bad) {
				t.Errorf("ControllerPolicy(%q) contains %s:\n%s", mount, bad, pol)
			}
		}
	}
}

// TestControllerPolicy runs the broker on a token that has only ControllerPolicy, against a real
// Vault: the operator enables AppRole, writes the policy and creates the token as drover vault policy's
// help says; the broker then manages roles and SecretIDs, and the token reads no secret.
func TestControllerPolicy(t *testing.T) {
	for _, mount := range []string{"approle", "drover/approle"} {
		t.Run(strings.ReplaceAll(mount, "/", "_"), func(t *testing.T) { testControllerPolicy(t, mount) })
	}
}

func testControllerPolicy(t *testing.T, mount string) {
	e := setup(t)
	ctx := context.Background()
	root := e.root

	// As the operator: the policy and a periodic token with only it (and default).
	if err := root.Sys().PutPolicy(vault.ControllerPolicyName, vault.ControllerPolicy(mount)); err != nil {
		t.Fatalf("writing the controller policy: %v", err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.ControllerPolicyName}, Period: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Auth.Policies, []string{"default", vault.ControllerPolicyName}) {
		t.Fatalf("token policies %v", tok.Auth.Policies)
	}
	ctlToken := tok.Auth.ClientToken
	ctl := client(t, e.srv.Addr, ctlToken)
	b, err := vault.New(&vault.Config{Address: e.srv.Addr, AuthMount: mount, Token: secrets.Secret(ctlToken), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// Before the operator enabled AppRole: the broker may see it is missing, not enable it.
	_, err = b.EnsureRole(ctx, webSpec)
	if err == nil || status(err) != http.StatusForbidden || !strings.Contains(err.Error(), "vault auth enable -path="+mount+" approle") {
		t.Fatalf("EnsureRole before AppRole is enabled: %v, want a 403 saying how to enable it", err)
	}
	t.Logf("EnsureRole before AppRole is enabled: %v", err)
	if err := root.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if auths, err := ctl.Sys().ListAuth(); err != nil || auths[mount+"/"] == nil {
		t.Fatalf("listing auth methods with the controller token: %v", err)
	}

	// The broker's whole job on the controller token.
	ref, err := b.EnsureRole(ctx, webSpec)
	if err != nil {
		t.Fatalf("EnsureRole: %v", err)
	}
	if ref2, err := b.EnsureRole(ctx, webSpec); err != nil || ref2 != ref { // the update path
		t.Fatalf("second EnsureRole: %+v %v", ref2, err)
	}
	w, err := b.IssueSecretID(ctx, "web", map[string]string{"instance": "web-1"}, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 0)
	if err != nil {
		t.Fatalf("IssueSecretID: %v", err)
	}
	plain := client(t, e.srv.Addr, w.Token.Reveal())
	s, err := plain.Logical().Write("sys/wrapping/unwrap", nil)
	if err != nil {
		t.Fatalf("unwrap: %v", err)
	}
	sid := s.Data["secret_id"].(string)
	l, err := client(t, e.srv.Addr, "").Logical().Write("auth/"+mount+"/login", map[string]any{"role_id": ref.RoleID, "secret_id": sid})
	if err != nil || l.Auth == nil {
		t.Fatalf("login with the issued SecretID: %v", err)
	}
	if v, err := client(t, e.srv.Addr, l.Auth.ClientToken).Logical().Read("secret/data/web/tls"); err != nil || v == nil {
		t.Fatalf("the role's token reads its secret: %v", err)
	}
	// Destroy: a used-up SecretID, one never unwrapped, one never issued.
	if err := b.DestroySecretID(ctx, "web", w.SecretIDAccessor); err != nil {
		t.Errorf("DestroySecretID of a used SecretID: %v", err)
	}
	w2, err := b.IssueSecretID(ctx, "web", nil, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DestroySecretID(ctx, "web", w2.SecretIDAccessor); err != nil {
		t.Fatalf("DestroySecretID: %v", err)
	}
	if acc, err := root.Logical().Write("auth/"+mount+"/role/drover-web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": w2.SecretIDAccessor}); status(err) != http.StatusNotFound && (err != nil || acc != nil) {
		t.Errorf("the destroyed SecretID is still there: %v %v", acc, err)
	}
	if err := b.DestroySecretID(ctx, "web", "00000000-0000-0000-0000-000000000000"); err != nil {
		t.Errorf("DestroySecretID of an accessor never issued: %v", err)
	}

	// The token reads no secret: not the role's, not the engine's metadata, not a list.
	for _, p := range []string{"secret/data/web/tls", "secret/metadata/web/tls", "secret/data/db/password"} {
		if _, err := ctl.Logical().Read(p); status(err) != http.StatusForbidden {
			t.Errorf("read %s with the controller token: %v, want 403", p, err)
		}
	}
	if _, err := ctl.Logical().List("secret/metadata/"); status(err) != http.StatusForbidden {
		t.Errorf("list secret/metadata/ with the controller token: %v, want 403", err)
	}
	// Nor does it change what it must not: other policies, auth methods.
	if err := ctl.Sys().PutPolicy("other", `path "secret/*" { capabilities = ["read"] }`); status(err) != http.StatusForbidden {
		t.Errorf("writing policy other with the controller token: %v, want 403", err)
	}
	if err := ctl.Sys().EnableAuthWithOptions("userpass", &api.EnableAuthOptions{Type: "userpass"}); status(err) != http.StatusForbidden {
		t.Errorf("enabling userpass with the controller token: %v, want 403", err)
	}

	// Values and ReadValues with the controller token fail, saying the token may not read them.
	_, verr := b.Values(ctx, "web")
	_, rerr := b.ReadValues(ctx, []string{"secret/data/web/tls"})
	for name, err := range map[string]error{"Values": verr, "ReadValues": rerr} {
		var denied *vault.DeniedError
		if !errors.As(err, &denied) || denied.Path != "secret/data/web/tls" || status(err) != http.StatusForbidden {
			t.Errorf("%s with the controller token: %v, want a *DeniedError for secret/data/web/tls wrapping the 403", name, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "secrets/vault: ") || !strings.Contains(msg, "may not read the secrets at secret/data/web/tls") ||
			!strings.Contains(msg, "permission denied") || strings.Contains(msg, "\n") || strings.Contains(msg, ctlToken) {
			t.Errorf("%s error %q: want one line saying the token may not read the secrets, with Vault's reason", name, msg)
		}
		t.Logf("%s: %v", name, err)
	}

	// The same paths with a token that may read them (here the root token): the values, and the
	// paths need no role policy.
	reader, err := vault.New(&vault.Config{Address: e.srv.Addr, AuthMount: mount, Token: secrets.Secret(e.srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := reader.ReadValues(ctx, []string{"secret/data/web/tls", "secret/data/db/password", "secret/data/web/tls"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := revealed(vals), []string{dbPass, tlsCert, tlsKey}; !slices.Equal(got, want) {
		t.Errorf("ReadValues: %d values, want %d in path and key order", len(got), len(want))
	}
}

// TestReadValuesErrors: a path with nothing, a bad path, a token that is not valid (a 403 too, but not
// a DeniedError: it is not a question of policy).
func TestReadValuesErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := e.broker.ReadValues(ctx, []string{"secret/data/web/tls", "secret/data/nothing/here"}); !errors.Is(err, secrets.ErrNotFound) || !strings.Contains(err.Error(), "secret/data/nothing/here") {
		t.Errorf("ReadValues of a path with nothing: %v, want ErrNotFound naming the path", err)
	}
	for _, bad := range [][]string{nil, {"secret/data/*"}, {"/secret/data/web"}} {
		if _, err := e.broker.ReadValues(ctx, bad); err == nil || !strings.HasPrefix(err.Error(), "secrets/vault: ") {
			t.Errorf("ReadValues(%q): %v, want a validation error", bad, err)
		}
	}
	badTok, err := vault.New(&vault.Config{Address: e.srv.Addr, Token: "hvs.not-a-token"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = badTok.ReadValues(ctx, []string{"secret/data/web/tls"})
	var denied *vault.DeniedError
	if err == nil || errors.As(err, &denied) || status(err) != http.StatusForbidden || strings.Contains(err.Error(), "not-a-token") {
		t.Errorf("ReadValues with a token that is not valid: %v, want a 403 that is not a DeniedError", err)
	}
	t.Logf("not a valid token: %v", err)
}
