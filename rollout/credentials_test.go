package rollout_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
	"github.com/drover-dev/drover/rollout"
)

// Every green gets a SecretID of its own from a real Vault, wrapped, in its user-data; the record and
// the instance carry only its accessor; destroying the instance destroys the SecretID.
func TestEachInstanceGetsItsOwnCredentialAndLosesItWithTheInstance(t *testing.T) {
	srv := vaulttest.Start(t)
	root, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken)
	broker, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	issuer := &bootdata.Issuer{Broker: broker, Addr: srv.Addr,
		Roles:      map[string]bootdata.RoleSecrets{"web": {Files: bootdata.FilesFor("secret/data/web/tls")}},
		BoundCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

	l, _ := deployed(t)
	l.build("web")
	c := l.controller(func(o *rollout.Options) { o.Credentials = issuer })
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)

	accessors := map[string]string{}
	var tokens []string
	for _, in := range l.running("web")[rec.Image.Identity] {
		acc := in.Labels[rollout.LabelCredential]
		if acc == "" {
			t.Fatalf("instance %s has no credential label: %v", in.ID, in.Labels)
		}
		accessors[in.ID] = acc
		ud, err := bootdata.Parse(l.userData[in.ID])
		if err != nil {
			t.Fatalf("user-data of %s: %v", in.ID, err)
		}
		if ud.Role != "web" || ud.Vault == nil || ud.Vault.CreationPath != "auth/approle/role/drover-web/secret-id" || ud.Vault.WrappedSecretID.Reveal() == "" {
			t.Fatalf("user-data of %s: %v", in.ID, ud)
		}
		look, err := root.Logical().Write("auth/approle/role/drover-web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
		if err != nil || look == nil || look.Data["metadata"].(map[string]any)["instance"] != in.Name {
			t.Fatalf("the SecretID of %s in Vault: %v, %v", in.ID, look, err)
		}
		if got := fmt.Sprint(look.Data["cidr_list"], look.Data["token_bound_cidrs"]); got != "[127.0.0.1/32] [127.0.0.1/32]" {
			t.Errorf("the SecretID of %s is bound to %s, want 127.0.0.1/32 for both", in.ID, got)
		}
		tokens = append(tokens, ud.Vault.WrappedSecretID.Reveal())
		if strings.Contains(string(l.userData[in.ID]), acc) {
			t.Errorf("the user-data of %s carries the accessor", in.ID)
		}
	}
	if len(accessors) != 2 || accessors[rec.Green[0].ID] == accessors[rec.Green[1].ID] {
		t.Fatalf("accessors %v, want one per instance", accessors)
	}

	items, err := l.store.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		for _, tok := range tokens {
			if strings.Contains(string(it.Value), tok) {
				t.Errorf("store key %s holds a wrapping token", it.Key)
			}
		}
	}

	rec, err = c.Abort(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Aborted)
	for id, acc := range accessors {
		look, err := root.Logical().Write("auth/approle/role/drover-web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
		if err == nil && look != nil {
			t.Errorf("the SecretID of destroyed instance %s is still in Vault: %v", id, look.Data)
		}
	}
}

// Instances of a role with an AWS IAM role get user-data that names the role's aws auth role at the
// mount and carries no credential: nothing is issued, labelled or revoked, and Vault's aws role is
// bound to the IAM role.
func TestAWSRoleInstancesAreDeliveredNothing(t *testing.T) {
	srv := vaulttest.Start(t)
	iam := vaulttest.NewIAM(t, map[string]string{"web": "AROAEXAMPLEWEBROLE01"})
	srv.EnableAWS(t, "aws", iam.URL, vaulttest.NewSTS(t, nil).URL, "vault.lab.example")
	broker, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:iam::" + vaulttest.Account + ":role/web"
	issuer := &bootdata.Issuer{Broker: broker, Addr: srv.Addr, IAMServerID: "vault.lab.example",
		Roles: map[string]bootdata.RoleSecrets{"web": {Files: bootdata.FilesFor("secret/data/web/tls"), AWSIAMRole: arn}}}

	l, _ := deployed(t)
	l.build("web")
	c := l.controller(func(o *rollout.Options) { o.Credentials = issuer })
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	for _, in := range l.running("web")[rec.Image.Identity] {
		if acc, ok := in.Labels[rollout.LabelCredential]; ok {
			t.Errorf("instance %s has a credential label %q", in.ID, acc)
		}
		ud, err := bootdata.Parse(l.userData[in.ID])
		if err != nil {
			t.Fatalf("user-data of %s: %v", in.ID, err)
		}
		v := ud.Vault
		if v == nil || v.Auth != bootdata.AuthAWS || v.AWSRole != "drover-web" || v.Mount() != "aws" || v.IAMServerID != "vault.lab.example" ||
			v.WrappedSecretID != "" || v.RoleID != "" || len(ud.Secrets) != 1 {
			t.Errorf("user-data of %s: %s", in.ID, l.userData[in.ID])
		}
	}
	root, _ := api.NewClient(&api.Config{Address: srv.Addr})
	root.SetToken(srv.RootToken)
	awsRole, err := root.Logical().Read("auth/aws/role/drover-web")
	if err != nil || awsRole == nil || fmt.Sprint(awsRole.Data["bound_iam_principal_arn"]) != "["+arn+"]" {
		t.Fatalf("Vault's aws role drover-web: %v %v", awsRole, err)
	}
	if s, _ := root.Logical().List("auth/approle/role"); s != nil {
		t.Errorf("AppRoles were made: %v", s.Data)
	}
	rec, err = c.Abort(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Aborted)
}
