package vault_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

const webRoleARN = "arn:aws:iam::" + vaulttest.Account + ":role/drover-web"

// A role with an AWS IAM principal gets an aws auth role (iam type) bound to that principal, resolved
// by Vault to the IAM role's unique ID, with the role's policy: no AppRole, no SecretID. The
// controller's token needs only ControllerPolicy and AWSControllerPolicy to make it.
func TestEnsureRoleWithAnAWSPrincipal(t *testing.T) {
	e := setup(t)
	iam := vaulttest.NewIAM(t, map[string]string{"drover-web": "AROAEXAMPLEWEBROLE01"})
	sts := vaulttest.NewSTS(t, nil)
	e.srv.EnableAWS(t, "aws", iam.URL, sts.URL, "")
	if err := e.root.Sys().PutPolicy(vault.ControllerPolicyName, vault.ControllerPolicy("approle")+vault.AWSControllerPolicy("")); err != nil {
		t.Fatal(err)
	}
	tok, err := e.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.ControllerPolicyName}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := vault.New(&vault.Config{Address: e.srv.Addr, Token: secrets.Secret(tok.Auth.ClientToken)})
	if err != nil {
		t.Fatal(err)
	}
	spec := secrets.RoleSpec{Role: "web", Paths: []string{"secret/data/web/tls"}, AWSIAMPrincipal: webRoleARN}
	for range 2 { // idempotent
		ref, err := b.EnsureRole(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if ref != (secrets.RoleRef{Mount: "aws", Policy: "drover-web", Method: secrets.MethodAWS}) {
			t.Errorf("ref %+v", ref)
		}
	}
	role, err := e.root.Logical().Read("auth/aws/role/drover-web")
	if err != nil || role == nil {
		t.Fatalf("the aws role: %v", err)
	}
	got := fmt.Sprintf("%v %v %v %v", role.Data["auth_type"], role.Data["bound_iam_principal_arn"], role.Data["bound_iam_principal_id"], role.Data["token_policies"])
	if want := "iam [" + webRoleARN + "] [AROAEXAMPLEWEBROLE01] [drover-web]"; got != want {
		t.Errorf("aws role drover-web: %s, want %s", got, want)
	}
	if r := iam.Requests(); len(r) == 0 || r[0].Action != "GetRole" || !r[0].Verified || len(sts.Requests()) == 0 || !sts.Requests()[0].Verified {
		t.Errorf("Vault never resolved the principal: IAM %v, STS %v", r, sts.Requests())
	}
	if s, _ := e.root.Logical().Read("auth/approle/role/drover-web"); s != nil {
		t.Errorf("an AppRole was made too: %v", s.Data)
	}
	pol, err := e.root.Sys().GetPolicy("drover-web")
	if err != nil || !strings.Contains(pol, `path "secret/data/web/tls"`) {
		t.Errorf("policy drover-web: %q %v", pol, err)
	}

	// A principal that is not an IAM role's ARN is refused before Vault is asked.
	spec.AWSIAMPrincipal = "arn:aws:iam::123:user/alice"
	if _, err := b.EnsureRole(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "want an IAM role ARN") {
		t.Errorf("a user ARN: %v", err)
	}
	// One Vault cannot resolve is reported with what to do.
	spec.AWSIAMPrincipal = "arn:aws:iam::" + vaulttest.Account + ":role/nobody"
	if _, err := b.EnsureRole(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "writing aws role drover-web at auth/aws") {
		t.Errorf("an unknown role: %v", err)
	}
}

func TestAWSControllerPolicyText(t *testing.T) {
	for mount, want := range map[string]string{"": "auth/aws/role/drover-*", "/cloud/aws/": "auth/cloud/aws/role/drover-*"} {
		pol := vault.AWSControllerPolicy(mount)
		paths := policyPathRE.FindAllStringSubmatch(pol, -1)
		if len(paths) != 1 || paths[0][1] != want || strings.Contains(pol, `"sudo"`) {
			t.Errorf("AWSControllerPolicy(%q):\n%s", mount, pol)
		}
	}
}
