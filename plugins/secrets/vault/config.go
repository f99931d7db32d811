// Package vault is the secrets broker: per-role policies and AppRoles, and one response-wrapped SecretID
// per instance.
package vault

import (
	"net/url"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
)

// Config is the vault block. The controller's token comes from VAULT_TOKEN or VAULT_TOKEN_FILE.
type Config struct {
	Address string `hcl:"address,optional"`
	// InstanceAddress is Vault's URL as instances reach it, when that is not Address: Vault
	// behind a private name in the VPC or a VPN, which drover's machine reaches another way. Empty
	// means instances use Address (or the lab's route to it, compute.HostRouter).
	InstanceAddress string `hcl:"instance_address,optional"`
	AuthMount       string `hcl:"approle_mount,optional"`
	WrapTTL         string `hcl:"wrap_ttl,optional"`
	CACert          string `hcl:"ca_cert,optional"`
	// AWSMount is Vault's aws auth mount, for roles whose deploy block names an aws_iam_role; an
	// operator enables and configures it once (vault auth enable aws; auth/aws/config/client).
	AWSMount string `hcl:"aws_mount,optional"`
	// AWSIAMServerID is the mount's iam_server_id_header_value, when the operator set one:
	// instances send it in their signed request, which then logs in to this Vault only.
	AWSIAMServerID string `hcl:"aws_iam_server_id,optional"`
	// JWTRole, when set and no VAULT_TOKEN is, makes the controller log in with Vault's jwt auth
	// method as this role, with the OIDC token a CI job gets from its platform, in the variable
	// JWTEnv (DROVER_VAULT_JWT by default) or the file JWTEnv_FILE names: no long-lived Vault
	// token in CI. The role's token_policies give the controller's policy.
	JWTRole  string `hcl:"jwt_role,optional"`
	JWTMount string `hcl:"jwt_mount,optional"`
	JWTEnv   string `hcl:"jwt_env,optional"`
	// Token is the controller's token. ControllerPolicy is what it needs: the drover-* policies
	// (sys/policies/acl/drover-*), the AppRole mount's role/drover-* paths, and a look at sys/auth.
	// It should not read any role's secret paths: Values and ReadValues with it fail with a
	// *DeniedError, and the image scan reads the values with a token of its own
	// (DROVER_SCAN_VAULT_TOKEN) in a Config that differs only in Token.
	Token secrets.Secret `json:"-"`
	// Timeout bounds each request to Vault; zero means one minute.
	Timeout time.Duration `json:"-"`
}

// NewDefaultConfig reads VAULT_ADDR and the token from the environment.
func NewDefaultConfig(env config.LookupEnv) (*Config, error) {
	token, err := config.Secret(env, "VAULT_TOKEN")
	return &Config{
		Address:   config.String(env, "VAULT_ADDR", "http://127.0.0.1:8200"),
		AuthMount: "approle",
		WrapTTL:   "5m",
		Token:     secrets.Secret(token),
	}, err
}

// Validate checks the values a block can get wrong.
func (c *Config) Validate() error {
	if u, err := url.Parse(c.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config.Errorf("address", "must be an http:// or https:// URL, got %q", c.Address)
	}
	if c.InstanceAddress != "" {
		if u, err := url.Parse(c.InstanceAddress); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config.Errorf("instance_address", "must be an http:// or https:// URL, got %q", c.InstanceAddress)
		}
	}
	if d, err := time.ParseDuration(c.WrapTTL); err != nil || d < 10*time.Second || d > time.Hour {
		return config.Errorf("wrap_ttl", "must be a duration between 10s and 1h, got %q", c.WrapTTL)
	}
	if !validName(c.AuthMount) {
		return config.Errorf("approle_mount", "must be a mount path of letters, digits, '-', '_' and '/', got %q", c.AuthMount)
	}
	if c.AWSMount != "" && !validName(c.AWSMount) {
		return config.Errorf("aws_mount", "must be a mount path of letters, digits, '-', '_' and '/', got %q", c.AWSMount)
	}
	if strings.ContainsAny(c.AWSIAMServerID, "\r\n") {
		return config.Errorf("aws_iam_server_id", "must be one line, got %q", c.AWSIAMServerID)
	}
	return c.validateJWT()
}
