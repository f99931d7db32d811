package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
)

// EnvScanToken names the Vault token drover build and drover images scan read a role's secret values
// with (also EnvScanToken_FILE); without it they use the controller's, VAULT_TOKEN, which should not
// be able to (vault.ControllerPolicy).
const EnvScanToken = "DROVER_SCAN_VAULT_TOKEN"

func vaultCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "vault",
		Usage: "what drover needs from Vault: the controller token's policy",
		Subcommands: []*cli.Command{
			{
				Name:  "policy",
				Usage: "print the least-privilege Vault policy for drover's controller token (VAULT_TOKEN)",
				Description: `Prints the Vault policy (HCL) that drover's controller token needs for the fleet's vault block
(its approle_mount): it writes the drover-ROLE policies and AppRoles and issues and destroys the
instances' SecretIDs. It may read no secret: the roles' secret values, which drover build and
drover images scan look for in images, are read with DROVER_SCAN_VAULT_TOKEN instead.

Once, as a Vault operator (enabling an auth method takes sudo, which the policy does not grant):
   vault auth enable approle                    # -path=MOUNT when approle_mount is another
   vault policy write drover-controller <(drover vault policy)
   vault token create -policy=drover-controller -period=24h
then give drover the token as VAULT_TOKEN (or a file holding it as VAULT_TOKEN_FILE). A periodic
token lasts while it is renewed within its period (vault token renew).

In CI, no long-lived token: with jwt_role in the vault block and no VAULT_TOKEN, drover logs in
with Vault's jwt auth method and the job's OIDC token (in DROVER_VAULT_JWT, or the block's jwt_env),
as a jwt role whose token_policies are this policy; docs/vault-jwt.md has the Vault setup for
GitHub Actions and GitLab.

For the secret-value check of drover build and drover images scan, a token that may read the roles'
secret paths, for example:
   vault policy write drover-scan - <<'EOF'
   path "kv/data/*" { capabilities = ["read"] }
   EOF
   DROVER_SCAN_VAULT_TOKEN=$(vault token create -policy=drover-scan -ttl=1h -field=token) drover build
(or a file holding it as DROVER_SCAN_VAULT_TOKEN_FILE). Without one the build and the scan read the
values with VAULT_TOKEN, which may not, and say that the values were not checked.

When a role's deploy block names an aws_iam_role, its instances log in with Vault's aws auth
method (iam) by their instance profile, nothing is delivered to them, and the policy also manages
the aws roles drover-ROLE; an operator enables and configures that method once:
   vault auth enable aws                         # -path=MOUNT when aws_mount is another
   vault write auth/aws/config/client sts_region=us-east-1 iam_server_id_header_value=vault.example
(the last one, if set, is the vault block's aws_iam_server_id).

The controller token reads no secret, but whoever holds it can issue a SecretID for a drover role
and log in as it: keep it as secret as the roles' secrets.

Examples:
   drover vault policy
   drover vault policy --output json | jq -r .policy`,
				Action: func(c *cli.Context) error { return a.vaultPolicy(c) },
			},
		},
	}
}

func (a *app) vaultPolicy(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("vault policy takes no arguments", "drover vault policy > drover-controller.hcl")
	}
	f, err := a.requireFleet(c)
	if err != nil {
		return err
	}
	if f.Vault == nil {
		return usageError(fmt.Sprintf("%s has no vault block: drover needs no Vault token", f.Path),
			`a role that declares secrets needs one: vault { address = "https://vault.example:8200" }`)
	}
	cp, ok := f.Vault.Config.(secrets.ControllerPolicy)
	if !ok {
		return failed(fmt.Errorf("the %s block cannot say what the controller's token needs", f.Vault.Type), "")
	}
	cloudLogin := false
	for _, r := range f.Roles {
		cloudLogin = cloudLogin || (r.Deploy != nil && r.Deploy.AWSIAMRole != "")
	}
	name, pol := cp.ControllerPolicy(cloudLogin)
	if a.json() {
		writeJSON(a.stdout, map[string]string{"name": name, "policy": pol})
		return nil
	}
	_, err = fmt.Fprint(a.stdout, pol)
	return err
}

// errNoScanToken is openScanVault's answer when neither DROVER_SCAN_VAULT_TOKEN nor VAULT_TOKEN (nor
// their _FILE forms) is set: the values are not looked for, and the output says so.
var errNoScanToken = errors.New("no Vault token to read the role's secret values with: set " + EnvScanToken +
	" (or VAULT_TOKEN) to a token that may read the role's secret paths, to check the image for them")

// openScanVault opens the fleet's vault block with the scan token: the block's address and TLS
// settings, DROVER_SCAN_VAULT_TOKEN(_FILE) when set, else the block's own token (VAULT_TOKEN).
func openScanVault(ctx context.Context, f *fleet.Fleet, env config.LookupEnv) (secrets.Broker, error) {
	rk, ok := f.Vault.Config.(secrets.Rekeyer)
	if !ok {
		return nil, fmt.Errorf("the %s block cannot read values with another token", f.Vault.Type)
	}
	tok, _, err := scanToken(env)
	if err != nil {
		return nil, err
	}
	cfg := f.Vault.Config
	switch {
	case tok != "":
		cfg = rk.WithToken(tok)
	case !rk.HasToken():
		return nil, errNoScanToken
	}
	fac, ok := all.New(env).Secrets(f.Vault.Type)
	if !ok || !fac.Available() {
		return nil, errNotAvailable(fleet.KindSecrets, f.Vault.Type)
	}
	return fac.Open(ctx, cfg, config.Env{Name: f.Vault.Name, FleetDir: f.Dir, Lookup: env})
}

// scanToken is the token the values are read with, when one of its own is set, and the variable it
// came from; without one, the block's own token is used, from VAULT_TOKEN or VAULT_TOKEN_FILE.
func scanToken(env config.LookupEnv) (secrets.Secret, string, error) {
	tok, err := config.Secret(env, EnvScanToken)
	if err != nil {
		return "", "", err
	}
	if tok != "" {
		if v, ok := env(EnvScanToken); ok && v != "" {
			return secrets.Secret(tok), EnvScanToken, nil
		}
		return secrets.Secret(tok), EnvScanToken + "_FILE", nil
	}
	if v, ok := env("VAULT_TOKEN"); ok && v != "" {
		return "", "VAULT_TOKEN", nil
	}
	return "", "VAULT_TOKEN_FILE", nil
}

// deniedNote says that the values were not looked for because the scan token may not read a path,
// and what to do.
func deniedNote(tokenVar, path string) string {
	if tokenVar == "VAULT_TOKEN" || tokenVar == "VAULT_TOKEN_FILE" {
		return fmt.Sprintf("%s may not read %s (403): set %s to a token that may, to check the image for the role's secret values",
			tokenVar, path, EnvScanToken)
	}
	return fmt.Sprintf("%s may not read %s (403): give it a policy that may read the role's secret paths, to check the image for the role's secret values",
		tokenVar, path)
}
