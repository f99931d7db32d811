package vault_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

const (
	tlsKey  = "-----BEGIN PRIVATE KEY-----tls-key-value"
	tlsCert = "tls-cert-value"
	dbPass  = "db-password-value"
)

// env is a dev server with the web and db secrets written, and a broker on it.
type env struct {
	srv    *vaulttest.Server
	root   *api.Client
	broker *vault.Broker
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := vaulttest.Start(t)
	e := &env{srv: srv, root: client(t, srv.Addr, srv.RootToken)}
	e.put(t, "secret/data/web/tls", map[string]any{"key": tlsKey, "cert": tlsCert})
	e.put(t, "secret/data/db/password", map[string]any{"password": dbPass})
	b, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	e.broker = b
	return e
}

func (e *env) put(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := e.root.Logical().Write(path, map[string]any{"data": data}); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

func client(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token) // also clears a VAULT_TOKEN from the environment
	return c
}

var webSpec = secrets.RoleSpec{
	Role:        "web",
	Paths:       []string{"secret/data/web/tls"},
	TokenTTL:    10 * time.Minute,
	SecretIDTTL: 20 * time.Minute,
}

// unwrap does what drover-boot does with the wrapping token: sys/wrapping/unwrap, authenticated by
// the wrapping token itself.
func unwrap(t *testing.T, addr string, w secrets.Wrapped) (secretID, accessor string, err error) {
	t.Helper()
	s, err := client(t, addr, w.Token.Reveal()).Logical().Write("sys/wrapping/unwrap", nil)
	if err != nil {
		return "", "", err
	}
	return s.Data["secret_id"].(string), s.Data["secret_id_accessor"].(string), nil
}

func login(t *testing.T, addr, roleID, secretID string) (*api.SecretAuth, error) {
	t.Helper()
	s, err := client(t, addr, "").Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		return nil, err
	}
	return s.Auth, nil
}

func status(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func TestEnsureRoleIsIdempotentAndReadsExactlyItsPaths(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	ref, err := e.broker.EnsureRole(ctx, webSpec)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Mount != "approle" || ref.Policy != "drover-web" || ref.RoleID == "" {
		t.Errorf("RoleRef = %+v", ref)
	}
	pol1, err := e.root.Sys().GetPolicy("drover-web")
	if err != nil {
		t.Fatal(err)
	}
	role1, err := e.root.Logical().Read("auth/approle/role/drover-web")
	if err != nil {
		t.Fatal(err)
	}

	ref2, err := e.broker.EnsureRole(ctx, webSpec)
	if err != nil {
		t.Fatal(err)
	}
	if ref2 != ref {
		t.Errorf("second EnsureRole: %+v, first %+v", ref2, ref)
	}
	pol2, _ := e.root.Sys().GetPolicy("drover-web")
	role2, _ := e.root.Logical().Read("auth/approle/role/drover-web")
	if pol1 != pol2 {
		t.Errorf("policy changed:\n%s\n---\n%s", pol1, pol2)
	}
	if fmt.Sprint(role1.Data) != fmt.Sprint(role2.Data) {
		t.Errorf("role changed:\n%v\n%v", role1.Data, role2.Data)
	}

	d := role2.Data
	for k, want := range map[string]string{
		"secret_id_num_uses": "1",
		"secret_id_ttl":      "1200",
		"token_ttl":          "600",
		"token_max_ttl":      "600",
		"bind_secret_id":     "true",
		"token_policies":     "[drover-web]",
	} {
		if got := fmt.Sprint(d[k]); got != want {
			t.Errorf("role %s = %s, want %s", k, got, want)
		}
	}
	if strings.Count(pol2, "path ") != 1 || !strings.Contains(pol2, `path "secret/data/web/tls"`) || !strings.Contains(pol2, `capabilities = ["read"]`) {
		t.Errorf("policy:\n%s", pol2)
	}

	// A login with an issued SecretID reads web/tls, and nothing else.
	w, err := e.broker.IssueSecretID(ctx, "web", nil, nil, 0)
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
	if !slices.Equal(auth.TokenPolicies, []string{"default", "drover-web"}) {
		t.Errorf("token policies %v", auth.TokenPolicies)
	}
	if auth.LeaseDuration != 600 {
		t.Errorf("token ttl %d, want 600", auth.LeaseDuration)
	}
	tok := client(t, e.srv.Addr, auth.ClientToken)
	s, err := tok.Logical().Read("secret/data/web/tls")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Data["data"].(map[string]any)["key"]; got != tlsKey {
		t.Errorf("web/tls key: got another value")
	}
	for _, p := range []string{"secret/data/db/password", "secret/metadata/web/tls", "secret/data/web/other", "sys/policies/acl/drover-web"} {
		if _, err := tok.Logical().Read(p); status(err) != http.StatusForbidden {
			t.Errorf("read %s with the role's token: %v, want 403", p, err)
		}
	}
	if _, err := tok.Logical().Write("secret/data/web/tls", map[string]any{"data": map[string]any{"k": "v"}}); status(err) != http.StatusForbidden {
		t.Errorf("write secret/data/web/tls with the role's token: %v, want 403", err)
	}

	// Another spec replaces the policy: paths in another order and a duplicate give the same policy;
	// a new path is added.
	spec := webSpec
	spec.Paths = []string{"secret/data/db/password", "secret/data/web/tls", "secret/data/db/password"}
	if _, err := e.broker.EnsureRole(ctx, spec); err != nil {
		t.Fatal(err)
	}
	pol3, _ := e.root.Sys().GetPolicy("drover-web")
	if strings.Count(pol3, "path ") != 2 || !strings.Contains(pol3, `path "secret/data/db/password"`) {
		t.Errorf("policy after the change:\n%s", pol3)
	}
	if _, err := tok.Logical().Read("secret/data/db/password"); err != nil {
		t.Errorf("read db/password after it was added: %v", err)
	}
}

func TestIssueSecretIDIsWrappedAndSingleUse(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ref, err := e.broker.EnsureRole(ctx, webSpec)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"instance": "web-green-1", "image": "sha256:0123abcd"}
	w, err := e.broker.IssueSecretID(ctx, "web", meta, nil, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const path = "auth/approle/role/drover-web/secret-id"
	if w.CreationPath != path || w.TTL != 2*time.Minute || w.Accessor == "" || w.SecretIDAccessor == "" || w.Accessor == w.SecretIDAccessor {
		t.Errorf("Wrapped = %+v", w)
	}
	if time.Since(w.CreationTime) > time.Minute {
		t.Errorf("CreationTime %s", w.CreationTime)
	}

	// What drover-boot checks before unwrapping; sys/wrapping/lookup needs no token.
	look, err := client(t, e.srv.Addr, "").Logical().Write("sys/wrapping/lookup", map[string]any{"token": w.Token.Reveal()})
	if err != nil {
		t.Fatal(err)
	}
	if look.Data["creation_path"] != path || fmt.Sprint(look.Data["creation_ttl"]) != "120" {
		t.Errorf("sys/wrapping/lookup: %v", look.Data)
	}

	// Unwrap works once.
	sid, acc, err := unwrap(t, e.srv.Addr, w)
	if err != nil {
		t.Fatal(err)
	}
	if acc != w.SecretIDAccessor {
		t.Errorf("unwrapped secret_id_accessor %s, Wrapped.SecretIDAccessor %s", acc, w.SecretIDAccessor)
	}
	if _, _, err := unwrap(t, e.srv.Addr, w); err == nil {
		t.Error("a second unwrap succeeded")
	}

	// The metadata is stored with the SecretID.
	l, err := e.root.Logical().Write("auth/approle/role/drover-web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(l.Data["metadata"]); got != fmt.Sprint(map[string]any{"instance": "web-green-1", "image": "sha256:0123abcd"}) {
		t.Errorf("stored metadata %s", got)
	}
	if fmt.Sprint(l.Data["secret_id_num_uses"]) != "1" {
		t.Errorf("secret_id_num_uses %v", l.Data["secret_id_num_uses"])
	}

	// The SecretID logs in once; the token carries the metadata.
	auth, err := login(t, e.srv.Addr, ref.RoleID, sid)
	if err != nil {
		t.Fatal(err)
	}
	if auth.Metadata["instance"] != "web-green-1" || auth.Metadata["image"] != "sha256:0123abcd" || auth.Metadata["role_name"] != "drover-web" {
		t.Errorf("token metadata %v", auth.Metadata)
	}
	if _, err := login(t, e.srv.Addr, ref.RoleID, sid); err == nil {
		t.Error("a second login with the SecretID succeeded")
	}

	// A used-up SecretID is gone: destroying it succeeds.
	if err := e.broker.DestroySecretID(ctx, "web", w.SecretIDAccessor); err != nil {
		t.Errorf("DestroySecretID of a used-up SecretID: %v", err)
	}

	// The default wrap TTL is the config's.
	w2, err := e.broker.IssueSecretID(ctx, "web", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w2.TTL != 5*time.Minute {
		t.Errorf("default wrap ttl %s, want 5m", w2.TTL)
	}
	if w2.Token == w.Token || w2.SecretIDAccessor == w.SecretIDAccessor {
		t.Error("two IssueSecretID calls returned the same SecretID")
	}
}

func TestDestroySecretID(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ref, err := e.broker.EnsureRole(ctx, webSpec)
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.broker.IssueSecretID(ctx, "web", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sid, _, err := unwrap(t, e.srv.Addr, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.broker.DestroySecretID(ctx, "web", w.SecretIDAccessor); err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, e.srv.Addr, ref.RoleID, sid); err == nil {
		t.Error("login with a destroyed SecretID succeeded")
	}
	if err := e.broker.DestroySecretID(ctx, "web", w.SecretIDAccessor); err != nil {
		t.Errorf("second DestroySecretID: %v", err)
	}
	if err := e.broker.DestroySecretID(ctx, "web", "00000000-0000-0000-0000-000000000000"); err != nil {
		t.Errorf("DestroySecretID of an accessor never issued: %v", err)
	}
	if err := e.broker.DestroySecretID(ctx, "nosuchrole", w.SecretIDAccessor); err != nil {
		t.Errorf("DestroySecretID for a role that does not exist: %v", err)
	}

	// Destroying before the unwrap: the wrapping token still unwraps, to a dead SecretID.
	w2, err := e.broker.IssueSecretID(ctx, "web", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.broker.DestroySecretID(ctx, "web", w2.SecretIDAccessor); err != nil {
		t.Fatal(err)
	}
	sid2, _, err := unwrap(t, e.srv.Addr, w2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, e.srv.Addr, ref.RoleID, sid2); err == nil {
		t.Error("login with a SecretID destroyed before its unwrap succeeded")
	}

	// The wrapping accessor is not a SecretID accessor: nothing to destroy, and the SecretID stays.
	w3, err := e.broker.IssueSecretID(ctx, "web", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.broker.DestroySecretID(ctx, "web", w3.Accessor); err != nil {
		t.Errorf("DestroySecretID(wrapping accessor): %v", err)
	}
	sid3, _, err := unwrap(t, e.srv.Addr, w3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, e.srv.Addr, ref.RoleID, sid3); err != nil {
		t.Errorf("the SecretID should still work: %v", err)
	}
}

func TestBoundCIDRs(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	spec := webSpec
	spec.BoundCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ref, err := e.broker.EnsureRole(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	role, _ := e.root.Logical().Read("auth/approle/role/drover-web")
	if fmt.Sprint(role.Data["secret_id_bound_cidrs"]) != "[127.0.0.0/8]" || fmt.Sprint(role.Data["token_bound_cidrs"]) != "[127.0.0.0/8]" {
		t.Errorf("role cidrs %v %v", role.Data["secret_id_bound_cidrs"], role.Data["token_bound_cidrs"])
	}

	// A SecretID bound to the instance's address logs in from there only; the test runs on 127.0.0.1.
	for _, tc := range []struct {
		cidr string
		ok   bool
	}{{"127.0.0.1/32", true}, {"127.0.0.2/32", false}} {
		w, err := e.broker.IssueSecretID(ctx, "web", nil, []netip.Prefix{netip.MustParsePrefix(tc.cidr)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		sid, acc, err := unwrap(t, e.srv.Addr, w)
		if err != nil {
			t.Fatal(err)
		}
		l, err := e.root.Logical().Write("auth/approle/role/drover-web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(l.Data["cidr_list"]) != "["+tc.cidr+"]" || fmt.Sprint(l.Data["token_bound_cidrs"]) != "["+tc.cidr+"]" {
			t.Errorf("secret-id cidrs %v %v", l.Data["cidr_list"], l.Data["token_bound_cidrs"])
		}
		_, err = login(t, e.srv.Addr, ref.RoleID, sid)
		if (err == nil) != tc.ok {
			t.Errorf("login with a SecretID bound to %s from 127.0.0.1: err = %v", tc.cidr, err)
		}
	}

	// Dropping the CIDRs from the spec clears them.
	if _, err := e.broker.EnsureRole(ctx, webSpec); err != nil {
		t.Fatal(err)
	}
	role, _ = e.root.Logical().Read("auth/approle/role/drover-web")
	if fmt.Sprint(role.Data["secret_id_bound_cidrs"]) != "[]" || fmt.Sprint(role.Data["token_bound_cidrs"]) != "[]" {
		t.Errorf("role cidrs after clearing: %v %v", role.Data["secret_id_bound_cidrs"], role.Data["token_bound_cidrs"])
	}
}

func TestValues(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := e.broker.Values(ctx, "web"); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("Values before EnsureRole: %v, want ErrNotFound", err)
	}
	spec := webSpec
	spec.Paths = []string{"secret/data/web/tls", "secret/data/db/password"}
	if _, err := e.broker.EnsureRole(ctx, spec); err != nil {
		t.Fatal(err)
	}
	vals, err := e.broker.Values(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	// Path order (db before web), key order within a path (cert before key).
	if got, want := revealed(vals), []string{dbPass, tlsCert, tlsKey}; !slices.Equal(got, want) {
		t.Errorf("Values = %d values, want %d in path and key order", len(got), len(want))
	}
	if s := fmt.Sprint(vals); strings.Contains(s, "value") {
		t.Errorf("printed values: %s", s)
	}

	// A declared path with nothing in it (deleted, or never written).
	if _, err := e.root.Logical().Delete("secret/metadata/db/password"); err != nil {
		t.Fatal(err)
	}
	_, err = e.broker.Values(ctx, "web")
	if !errors.Is(err, secrets.ErrNotFound) || !strings.Contains(err.Error(), "secret/data/db/password") {
		t.Errorf("Values with a missing path: %v, want ErrNotFound naming the path", err)
	}
	e.put(t, "secret/data/db/password", map[string]any{"password": dbPass, "port": 5432})
	if _, err := e.root.Logical().Delete("secret/data/db/password"); err != nil { // soft delete of the latest version
		t.Fatal(err)
	}
	if _, err := e.broker.Values(ctx, "web"); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("Values with a soft-deleted path: %v, want ErrNotFound", err)
	}
	e.put(t, "secret/data/db/password", map[string]any{"password": dbPass, "port": 5432, "tags": []string{"a"}})
	vals, err = e.broker.Values(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := revealed(vals), []string{dbPass, "5432", `["a"]`, tlsCert, tlsKey}; !slices.Equal(got, want) {
		t.Errorf("Values = %q, want %q", got, want)
	}
}

func TestErrorsCarryNoToken(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := e.broker.EnsureRole(ctx, webSpec); err != nil {
		t.Fatal(err)
	}
	w, err := e.broker.IssueSecretID(ctx, "web", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}

	const badToken = "hvs.bad-token-0123456789abcdef"
	bad, err := vault.New(&vault.Config{Address: e.srv.Addr, Token: badToken})
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{}
	_, errs["EnsureRole"] = bad.EnsureRole(ctx, webSpec)
	_, errs["IssueSecretID"] = bad.IssueSecretID(ctx, "web", map[string]string{"instance": "i-1"}, nil, 0)
	errs["DestroySecretID"] = bad.DestroySecretID(ctx, "web", w.SecretIDAccessor)
	_, errs["Values"] = bad.Values(ctx, "web")
	_, errs["IssueSecretID(missing role)"] = e.broker.IssueSecretID(ctx, "nosuchrole", nil, nil, 0)
	_, errs["Values(missing role)"] = e.broker.Values(ctx, "nosuchrole")
	_, errs["EnsureRole(bad path)"] = e.broker.EnsureRole(ctx, secrets.RoleSpec{Role: "web", Paths: []string{"secret/data/*"}})

	down, err := vault.New(&vault.Config{Address: "http://127.0.0.1:1", Token: badToken, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, errs["IssueSecretID(server down)"] = down.IssueSecretID(ctx, "web", nil, nil, 0)

	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			for _, secret := range []string{badToken, e.srv.RootToken, w.Token.Reveal(), tlsKey, dbPass} {
				if strings.Contains(s, secret) {
					t.Errorf("%s: error contains a secret: %s", name, s)
				}
			}
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "secrets/vault: ") || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q: want one line starting with secrets/vault: ", name, msg)
		}
		t.Logf("%s: %v", name, err)
	}
	if status(errs["EnsureRole"]) != http.StatusForbidden {
		t.Errorf("EnsureRole with a bad token: %v, want a wrapped 403 *api.ResponseError", errs["EnsureRole"])
	}
	for _, name := range []string{"IssueSecretID(missing role)", "Values(missing role)"} {
		if !errors.Is(errs[name], secrets.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, errs[name])
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	refs := make([]secrets.RoleRef, 4)
	errs := make([]error, 4)
	for i := range refs {
		wg.Go(func() { refs[i], errs[i] = e.broker.EnsureRole(ctx, webSpec) })
	}
	wg.Wait()
	for i := range refs {
		if errs[i] != nil || refs[i] != refs[0] {
			t.Fatalf("concurrent EnsureRole %d: %+v %v (first %+v)", i, refs[i], errs[i], refs[0])
		}
	}
	ws := make([]secrets.Wrapped, 16)
	for i := range ws {
		wg.Go(func() {
			var err error
			ws[i], err = e.broker.IssueSecretID(ctx, "web", map[string]string{"instance": fmt.Sprint(i)}, nil, 0)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, w := range ws {
		if seen[w.SecretIDAccessor] || seen[w.Token.Reveal()] {
			t.Fatal("two SecretIDs alike")
		}
		seen[w.SecretIDAccessor], seen[w.Token.Reveal()] = true, true
	}
	for _, w := range ws {
		wg.Go(func() {
			if err := e.broker.DestroySecretID(ctx, "web", w.SecretIDAccessor); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := e.root.Logical().List("auth/approle/role/drover-web/secret-id")
	if err != nil {
		t.Fatal(err)
	}
	if list != nil {
		t.Errorf("SecretIDs left after destroying all: %v", list.Data["keys"])
	}
}

func TestOwnMountIsEnabled(t *testing.T) {
	srv := vaulttest.Start(t)
	b, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken), AuthMount: "drover/approle", WrapTTL: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref, err := b.EnsureRole(ctx, webSpec)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Mount != "drover/approle" {
		t.Errorf("Mount = %s", ref.Mount)
	}
	w, err := b.IssueSecretID(ctx, "web", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.CreationPath != "auth/drover/approle/role/drover-web/secret-id" || w.TTL != time.Minute {
		t.Errorf("Wrapped = %+v", w)
	}
}

func TestNewAndValidation(t *testing.T) {
	for name, cfg := range map[string]*vault.Config{
		"nil":       nil,
		"no token":  {Address: "http://127.0.0.1:8200"},
		"bad addr":  {Address: "127.0.0.1:8200", Token: "t"},
		"bad ttl":   {Address: "http://127.0.0.1:8200", Token: "t", WrapTTL: "2s"},
		"bad mount": {Address: "http://127.0.0.1:8200", Token: "t", AuthMount: "app role"},
	} {
		if _, err := vault.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "secrets/vault: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	b, err := vault.New(&vault.Config{Address: "http://127.0.0.1:1", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, spec := range []secrets.RoleSpec{
		{Role: "Web", Paths: []string{"secret/data/web"}},
		{Role: "web", Paths: nil},
		{Role: "web", Paths: []string{"/secret/data/web"}},
		{Role: "web", Paths: []string{"secret/data/../sys"}},
		{Role: "web", Paths: []string{`secret/data/x" { capabilities = ["sudo"] } path "y`}},
		{Role: "web", Paths: []string{"secret/data/web"}, TokenTTL: time.Millisecond},
	} {
		if _, err := b.EnsureRole(ctx, spec); err == nil || strings.Contains(err.Error(), "connect") {
			t.Errorf("EnsureRole(%+v): %v, want a validation error", spec, err)
		}
	}
	cfg, err := vault.NewDefaultConfig(func(k string) (string, bool) {
		return map[string]string{"VAULT_TOKEN": "hvs.envtoken"}[k], k == "VAULT_TOKEN"
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token.Reveal() != "hvs.envtoken" {
		t.Error("NewDefaultConfig did not read VAULT_TOKEN")
	}
	if j, _ := json.Marshal(cfg); strings.Contains(string(j), "envtoken") || strings.Contains(fmt.Sprintf("%+v", cfg), "envtoken") {
		t.Error("a printed Config shows the token")
	}
}

// revealed is the values in clear, for comparing.
func revealed(vals []secrets.Secret) []string {
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, v.Reveal())
	}
	return out
}
