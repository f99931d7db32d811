package vault

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// iamRoleARN is an IAM role's ARN in any partition; paths are allowed.
var iamRoleARN = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// ValidIAMRoleARN reports whether arn is an IAM role's ARN, the only principal a role's instances
// log in as.
func ValidIAMRoleARN(arn string) bool { return iamRoleARN.MatchString(arn) }

// AWSMountOf is cfg's aws auth mount without slashes, "aws" when unset.
func AWSMountOf(cfg *Config) string {
	if m := strings.Trim(cfg.AWSMount, "/"); m != "" {
		return m
	}
	return "aws"
}

// ensureAWSRole makes the role's policy and an aws auth role of the iam type that logs in exactly
// spec.AWSIAMPrincipal. Vault resolves the principal to its unique ID when the role is written
// (resolve_aws_unique_ids), so a role deleted and made again under the same name is not trusted;
// that takes the mount's own AWS credentials, which the operator configured with the mount. The
// token is bound to nothing else: an instance's address is not known before it boots.
func (b *Broker) ensureAWSRole(ctx context.Context, spec secrets.RoleSpec, paths, issue []string, tokenTTL time.Duration) (secrets.RoleRef, error) {
	if !ValidIAMRoleARN(spec.AWSIAMPrincipal) {
		return secrets.RoleRef{}, fmt.Errorf("secrets/vault: role %s: aws iam principal %q: want an IAM role ARN such as arn:aws:iam::123456789012:role/web", spec.Role, spec.AWSIAMPrincipal)
	}
	name := NamePrefix + spec.Role
	if err := b.c.Sys().PutPolicyWithContext(ctx, name, policy(spec.Role, paths, issue)); err != nil {
		return secrets.RoleRef{}, wrap(err, "role %s: writing policy %s", spec.Role, name)
	}
	_, err := b.c.Logical().WriteWithContext(ctx, "auth/"+b.awsMount+"/role/"+name, withTokenLife(map[string]any{
		"auth_type":               "iam",
		"bound_iam_principal_arn": []string{spec.AWSIAMPrincipal},
		"resolve_aws_unique_ids":  true,
		"token_policies":          []string{name},
		"token_no_default_policy": false,
	}, tokenTTL, len(issue) > 0))
	if err != nil {
		return secrets.RoleRef{}, wrap(err, "role %s: writing aws role %s at auth/%s (an operator enables and configures the aws auth method once: vault auth enable -path=%s aws; vault write auth/%s/config/client ...)",
			spec.Role, name, b.awsMount, b.awsMount, b.awsMount)
	}
	return secrets.RoleRef{Mount: b.awsMount, Policy: name, Method: secrets.MethodAWS}, nil
}

// AWSControllerPolicy is what ControllerPolicy lacks when roles log in with the aws auth method at
// awsMount ("" means "aws"): writing and reading the aws roles drover-ROLE. `drover vault policy`
// adds it when a role's deploy block names an aws_iam_role.
func AWSControllerPolicy(awsMount string) string {
	mount := AWSMountOf(&Config{AWSMount: awsMount})
	return fmt.Sprintf(`
# The per-role aws auth roles drover-ROLE (iam type, bound to the role's IAM principal). Enabling and
# configuring the aws auth method takes sudo and the mount's AWS credentials: once, as an operator,
#   vault auth enable -path=%s aws
#   vault write auth/%s/config/client sts_region=... (and iam_server_id_header_value=...)
path %q {
  capabilities = ["create", "read", "update"]
}
`, mount, mount, "auth/"+mount+"/role/"+NamePrefix+"*")
}
