package vault

import (
	"fmt"
	"strings"
)

// ControllerPolicyName is the name `drover vault policy` suggests for ControllerPolicy.
const ControllerPolicyName = "drover-controller"

// ControllerPolicy is the HCL of the least-privilege Vault policy for the controller's token
// (Config.Token) with authMount as the AppRole mount (the vault block's approle_mount, which
// Config.Validate checks; "" means "approle"): what EnsureRole,
// IssueSecretID and DestroySecretID need, and nothing under any secrets engine, so the token
// itself cannot read a role's secrets (Values and ReadValues with it return a *DeniedError).
//
// What it grants, and why:
//   - read on sys/auth: EnsureRole checks that AppRole is enabled at the mount. Enabling it takes
//     sudo on sys/auth/MOUNT, which the policy does not grant: an operator runs
//     `vault auth enable -path=MOUNT approle` once.
//   - create, read, update on sys/policies/acl/drover-*: the per-role policies (the path the Vault
//     API client's PutPolicy and GetPolicy use); read is for Values and for operators checking.
//   - create, read, update on auth/MOUNT/role/drover-*: the per-role AppRoles. The glob is a prefix,
//     so it covers the role's sub-paths the broker uses (role-id, secret-id,
//     secret-id-accessor/lookup, secret-id-accessor/destroy) and the role's other sub-paths,
//     whose settings a write of the role sets anyway. Vault's globs cannot tell them apart under
//     the drover- prefix.
//
// Nothing is deleted (no delete capability), listed, or revoked: the broker does none of that. A
// wrapped response that comes back wrong is answered by destroying its SecretID; the wrapping token
// then expires after wrap_ttl.
//
// The token cannot read a secret, but whoever holds it can issue a SecretID for a drover role and
// log in as that role, or write a drover-* policy and AppRole of their own: keep it as secret as the
// roles' secrets.
func ControllerPolicy(authMount string) string {
	mount := strings.Trim(authMount, "/")
	if mount == "" {
		mount = "approle"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# %s: the Vault policy of drover's controller token (drover vault policy prints it).
# It manages the drover-ROLE policies and AppRoles and issues and destroys their SecretIDs. It grants
# nothing under any secrets engine: the token cannot read the roles' secrets (the image scan reads
# them with DROVER_SCAN_VAULT_TOKEN). Whoever holds it can still issue a SecretID for a drover role:
# keep the token as secret as the roles' secrets.
#
# Enabling the AppRole auth method takes sudo, which this policy does not grant: once, as an operator,
#   vault auth enable -path=%s approle

# Check that AppRole is enabled at %s/.
path "sys/auth" {
  capabilities = ["read"]
}

# The per-role policies drover-ROLE: read exactly the role's secret paths.
path %q {
  capabilities = ["create", "read", "update"]
}

# The per-role AppRoles drover-ROLE and, under them, role-id (read), secret-id (issue, wrapped),
# secret-id-accessor/lookup and secret-id-accessor/destroy.
path %q {
  capabilities = ["create", "read", "update"]
}
`, ControllerPolicyName, mount, mount, "sys/policies/acl/"+NamePrefix+"*", "auth/"+mount+"/role/"+NamePrefix+"*")
	return b.String()
}
