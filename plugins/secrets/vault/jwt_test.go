package vault_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/vault"
)

// ciIssuer signs JWTs the way a CI platform's OIDC provider does (RS256, a key ID) and serves its
// public key as a JWKS, which Vault's jwt auth method fetches.
type ciIssuer struct {
	key  *rsa.PrivateKey
	kid  string
	jwks *httptest.Server
}

func newCIIssuer(t *testing.T) *ciIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &ciIssuer{key: key, kid: "ci-test-key"}
	b64 := base64.RawURLEncoding.EncodeToString
	body, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": iss.kid, "use": "sig", "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	iss.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(iss.jwks.Close)
	return iss
}

// sign returns a signed JWT with claims.
func (iss *ciIssuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": iss.kid}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, iss.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// ciClaims are the claims of a CI job's OIDC token for the fleet repository's main branch, valid
// for ten minutes, as GitHub Actions issues them (repository, ref, an audience the job asked for).
func ciClaims(repo, ref string, expires time.Time) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": "https://ci.example", "aud": "https://vault.example", "sub": "repo:" + repo + ":ref:" + ref,
		"repository": repo, "ref": ref, "iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"exp": expires.Unix(),
	}
}

// A CI job logs the controller in with its OIDC token through Vault's jwt auth method, set up as
// docs/vault-jwt.md says: the token Vault returns carries the controller's policy and nothing more,
// and drover acts with it. A token for another repository, an expired one, or none at all is refused
// with what to fix.
func TestJWTLoginFromCI(t *testing.T) {
	e := setup(t)
	iss := newCIIssuer(t)
	for _, m := range []string{"jwt", "approle"} { // what an operator enables once
		if err := e.root.Sys().EnableAuthWithOptions(m, &api.EnableAuthOptions{Type: m}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.root.Logical().Write("auth/jwt/config", map[string]any{"jwks_url": iss.jwks.URL, "bound_issuer": "https://ci.example"}); err != nil {
		t.Fatal(err)
	}
	if err := e.root.Sys().PutPolicy(vault.ControllerPolicyName, vault.ControllerPolicy("approle")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.root.Logical().Write("auth/jwt/role/drover-ci", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"https://vault.example"},
		"bound_claims":   map[string]any{"repository": "acme/fleet", "ref": "refs/heads/main"},
		"token_policies": []string{vault.ControllerPolicyName}, "token_no_default_policy": true, "token_ttl": "15m",
	}); err != nil {
		t.Fatal(err)
	}
	open := func(env map[string]string) (secrets.Broker, error) {
		cfg := &vault.Config{Address: e.srv.Addr, JWTRole: "drover-ci"}
		return vault.Factory().Open(t.Context(), cfg, config.Env{Name: "vault", Lookup: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}})
	}

	good := iss.sign(t, ciClaims("acme/fleet", "refs/heads/main", time.Now().Add(10*time.Minute)))
	b, err := open(map[string]string{vault.DefaultJWTEnv: good})
	if err != nil {
		t.Fatal(err)
	}
	// What the controller does with its token works: a role's policy and AppRole.
	if _, err := b.EnsureRole(t.Context(), secrets.RoleSpec{Role: "web", Paths: []string{"secret/data/web/tls"}}); err != nil {
		t.Fatalf("the controller's work with the CI's Vault token: %v", err)
	}
	// ... and what it must not do is denied: the token has the controller's policy only.
	if _, err := b.(secrets.PathReader).ReadValues(t.Context(), []string{"secret/data/web/tls"}); err == nil {
		t.Error("the CI's token read a role's secret: it should carry the controller's policy only")
	}

	// The token from a file, as GitLab's id_tokens or a step that writes it hand it over.
	file := filepath.Join(t.TempDir(), "jwt")
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := open(map[string]string{vault.DefaultJWTEnv + "_FILE": file}); err != nil {
		t.Errorf("the token from %s_FILE: %v", vault.DefaultJWTEnv, err)
	}

	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"another repository": {map[string]string{vault.DefaultJWTEnv: iss.sign(t, ciClaims("mallory/fleet", "refs/heads/main", time.Now().Add(10*time.Minute)))},
			`secrets/vault: jwt login as role "drover-ci" at auth/jwt: vault: 400 Bad Request: error validating claims`},
		"expired": {map[string]string{vault.DefaultJWTEnv: iss.sign(t, ciClaims("acme/fleet", "refs/heads/main", time.Now().Add(-5*time.Minute)))},
			`secrets/vault: jwt login as role "drover-ci" at auth/jwt: vault: 400 Bad Request: error validating token: invalid expiration time (exp) claim: token is expired`},
		"no token": {map[string]string{}, `secrets/vault: jwt login as role "drover-ci": DROVER_VAULT_JWT (or DROVER_VAULT_JWT_FILE) is empty`},
	} {
		_, err := open(tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", name, err, tc.want)
		}
	}
}

// The jwt settings are checked with the block's other values.
func TestJWTConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  vault.Config
		want string
	}{
		{vault.Config{JWTMount: "ci"}, "jwt_role: is required with jwt_mount or jwt_env"},
		{vault.Config{JWTRole: "drover ci"}, `jwt_role: must be a role name of letters, digits, '-', '_' and '/', got "drover ci"`},
		{vault.Config{JWTRole: "drover-ci", JWTEnv: "1TOKEN"}, `jwt_env: must be an environment variable name (letters, digits and '_', not starting with a digit), got "1TOKEN"`},
		{vault.Config{JWTRole: "drover-ci", JWTMount: "ci jwt"}, `jwt_mount: must be a mount path`},
	} {
		c := tc.cfg
		c.Address, c.WrapTTL, c.AuthMount = "http://127.0.0.1:8200", "5m", "approle"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one with %q", tc.cfg, err, tc.want)
		}
	}
	// Without a token or a jwt role, New says both ways to one.
	if _, err := vault.New(&vault.Config{Address: "http://127.0.0.1:8200"}); err == nil || !strings.Contains(err.Error(), "set VAULT_TOKEN or VAULT_TOKEN_FILE, or set jwt_role") {
		t.Errorf("no token: %v", err)
	}
}
