package vault

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
)

// DefaultJWTEnv is the variable a CI job puts its OIDC token in for the vault block's jwt login,
// when the block names no other (jwt_env).
const DefaultJWTEnv = "DROVER_VAULT_JWT"

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// JWTMountOf is cfg's jwt auth mount without slashes, "jwt" when unset.
func JWTMountOf(cfg *Config) string {
	if m := strings.Trim(cfg.JWTMount, "/"); m != "" {
		return m
	}
	return "jwt"
}

// JWTEnvOf is the variable cfg's jwt login reads the CI's token from.
func JWTEnvOf(cfg *Config) string {
	if cfg.JWTEnv != "" {
		return cfg.JWTEnv
	}
	return DefaultJWTEnv
}

// validateJWT checks the block's jwt login settings.
func (c *Config) validateJWT() error {
	if c.JWTRole == "" {
		if c.JWTMount != "" || c.JWTEnv != "" {
			return config.Errorf("jwt_role", "is required with jwt_mount or jwt_env: name the jwt auth role the CI's token logs in as")
		}
		return nil
	}
	if !validName(c.JWTRole) {
		return config.Errorf("jwt_role", "must be a role name of letters, digits, '-', '_' and '/', got %q", c.JWTRole)
	}
	if c.JWTMount != "" && !validName(c.JWTMount) {
		return config.Errorf("jwt_mount", "must be a mount path of letters, digits, '-', '_' and '/', got %q", c.JWTMount)
	}
	if c.JWTEnv != "" && !envName.MatchString(c.JWTEnv) {
		return config.Errorf("jwt_env", "must be an environment variable name (letters, digits and '_', not starting with a digit), got %q", c.JWTEnv)
	}
	return nil
}

// errNoToken is what opening the block without any way to a token says.
var errNoToken = errors.New("secrets/vault: no token: set VAULT_TOKEN or VAULT_TOKEN_FILE, or set jwt_role in the vault block to log in with a CI's OIDC token")

// loginJWT logs in at the block's jwt auth mount as JWTRole with the token in the variable JWTEnv
// (or the file JWTEnv_FILE names), as a CI job does with the OIDC token its platform issues (GitHub
// Actions, GitLab's id_tokens), and returns the Vault token it gets. Vault checks the JWT's
// signature against the mount's JWKS or OIDC discovery URL and the role's bound audiences and
// claims; drover checks nothing of the JWT itself. It sends one request and keeps nothing: a failed
// login leaves no state behind.
func loginJWT(ctx context.Context, c *Config, lookup config.LookupEnv) (secrets.Secret, error) {
	name := JWTEnvOf(c)
	jwt, err := config.Secret(lookup, name)
	if err != nil {
		return "", fmt.Errorf("secrets/vault: jwt login: %w", err)
	}
	if jwt == "" {
		return "", fmt.Errorf("secrets/vault: jwt login as role %q: %s (or %s_FILE) is empty: the CI job puts its OIDC token there for drover (or set VAULT_TOKEN to use a token instead)", c.JWTRole, name, name)
	}
	client, err := newClient(c)
	if err != nil {
		return "", err
	}
	mount := JWTMountOf(c)
	s, err := client.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role": c.JWTRole, "jwt": jwt})
	if err != nil {
		return "", wrap(err, "jwt login as role %q at auth/%s", c.JWTRole, mount)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return "", fmt.Errorf("secrets/vault: jwt login as role %q at auth/%s: Vault answered without a token", c.JWTRole, mount)
	}
	return secrets.Secret(s.Auth.ClientToken), nil
}
