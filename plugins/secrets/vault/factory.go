package vault

import (
	"context"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
)

var (
	_ secrets.Endpoint         = (*Config)(nil)
	_ secrets.PathReader       = (*Broker)(nil)
	_ secrets.Rekeyer          = (*Config)(nil)
	_ secrets.ControllerPolicy = (*Config)(nil)
	_ secrets.CILogin          = (*Config)(nil)
)

// CITokenEnv implements secrets.CILogin: the jwt login's variable when jwt_role is set.
func (c *Config) CITokenEnv() string {
	if c.JWTRole == "" {
		return ""
	}
	return JWTEnvOf(c)
}

// Factory is the vault secrets type: the fleet's vault { } block.
func Factory() secrets.Factory {
	return secrets.Factory{
		Type:      "vault",
		Summary:   "HashiCorp Vault",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env) },
		Open: func(ctx context.Context, cfg any, env config.Env) (secrets.Broker, error) {
			c, err := config.As[Config]("vault", cfg)
			if err != nil {
				return nil, err
			}
			if c.Token == "" && c.JWTRole != "" && env.Lookup != nil {
				n, err := c.normalized()
				if err != nil {
					return nil, err
				}
				tok, err := loginJWT(ctx, &n, env.Lookup)
				if err != nil {
					return nil, err
				}
				c = c.WithToken(tok).(*Config)
			}
			return New(c)
		},
	}
}

// ServerAddress implements secrets.Endpoint.
func (c *Config) ServerAddress() string { return c.Address }

// AddressForInstances implements secrets.Endpoint.
func (c *Config) AddressForInstances() string { return c.InstanceAddress }

// IAMServerID implements secrets.Endpoint.
func (c *Config) IAMServerID() string { return c.AWSIAMServerID }

// HasToken implements secrets.Rekeyer: the block has a token, or gets one at Open by its jwt login.
func (c *Config) HasToken() bool { return c.Token != "" || c.JWTRole != "" }

// WithToken implements secrets.Rekeyer: the same block acting with tok.
func (c *Config) WithToken(tok secrets.Secret) any {
	cp := *c
	cp.Token = tok
	return &cp
}

// ControllerPolicy implements secrets.ControllerPolicy: ControllerPolicy of the block's AppRole
// mount, and AWSControllerPolicy when roles log in with the aws method.
func (c *Config) ControllerPolicy(withCloudLogin bool) (string, string) {
	pol := ControllerPolicy(c.AuthMount)
	if withCloudLogin {
		pol += AWSControllerPolicy(c.AWSMount)
	}
	return ControllerPolicyName, pol
}
