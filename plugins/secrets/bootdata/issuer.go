package bootdata

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// Issuer gives each new instance of a role that declares secrets its user-data: a SecretID issued
// for that instance alone, response-wrapped, with the role's secret files. It implements the rollout
// controller's Credentials. It is safe for concurrent use; the role's policy and AppRole are ensured
// once per Issuer (EnsureRole is idempotent, so a second drover doing the same is harmless).
type Issuer struct {
	Broker secrets.Broker
	// Addr is Vault's address as instances reach it (in the lab, through the VM's gateway).
	Addr   string
	CACert string
	// WrapTTL is how long the wrapping token lives; zero means 5 minutes.
	WrapTTL time.Duration
	// Roles are the roles that get credentials, by name.
	Roles map[string]RoleSecrets
	// BoundCIDRs, when not empty, are the networks instances reach Vault from: a SecretID, and the
	// token it logs in to, work only from there (the role's secret_id_bound_cidrs and
	// token_bound_cidrs, and each SecretID's own), so a token copied off an instance is useless
	// elsewhere.
	BoundCIDRs []netip.Prefix
	// IAMServerID is the aws auth mount's iam_server_id_header_value, for roles with an AWSIAMRole.
	IAMServerID string

	mu   sync.Mutex
	refs map[string]secrets.RoleRef
}

// RoleSecrets is what a role declares: the files drover-boot writes at boot, each from one KV
// version 2 path, and the certificates it issues from Vault's PKI engine.
type RoleSecrets struct {
	Files []SecretFile
	// Certificates hold no ${role.dns_name} any more (the caller resolved it); InstanceAddress is
	// left for drover-boot.
	Certificates []Certificate
	TokenTTL     time.Duration
	SecretIDTTL  time.Duration
	// AWSIAMRole, when set, is the ARN of the IAM role the instances run as: they log in with
	// Vault's aws auth method (iam) by their own AWS identity, and no SecretID is issued.
	AWSIAMRole string
}

// FilesFor is the files of a role that lists only paths: each path's fields as one JSON file named
// after the path's last element ("kv/data/web/tls" -> /run/drover/secrets/tls.json), mode 0400.
func FilesFor(paths ...string) []SecretFile {
	out := make([]SecretFile, 0, len(paths))
	for _, p := range paths {
		out = append(out, SecretFile{Path: p, Name: path.Base(p) + ".json"})
	}
	return out
}

// Paths are the distinct paths of the files, in their order: what the role's policy may read.
func (r RoleSecrets) Paths() []string {
	var out []string
	for _, f := range r.Files {
		if !slices.Contains(out, f.Path) {
			out = append(out, f.Path)
		}
	}
	return out
}

// Wants reports whether the role declares secrets.
func (i *Issuer) Wants(role string) bool {
	r, ok := i.Roles[role]
	return ok && (len(r.Files) > 0 || len(r.Certificates) > 0)
}

func (i *Issuer) ref(ctx context.Context, role string) (secrets.RoleRef, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if ref, ok := i.refs[role]; ok {
		return ref, nil
	}
	r := i.Roles[role]
	spec := secrets.RoleSpec{Role: role, Paths: r.Paths(), IssuePaths: IssuePaths(r.Certificates), TokenTTL: r.TokenTTL, SecretIDTTL: r.SecretIDTTL, BoundCIDRs: i.BoundCIDRs, AWSIAMPrincipal: r.AWSIAMRole}
	if r.AWSIAMRole != "" {
		spec.BoundCIDRs = nil // an AWS instance's address is not known before it boots
	}
	ref, err := i.Broker.EnsureRole(ctx, spec)
	if err != nil {
		return secrets.RoleRef{}, err
	}
	if i.refs == nil {
		i.refs = map[string]secrets.RoleRef{}
	}
	i.refs[role] = ref
	return ref, nil
}

// Issue issues a wrapped SecretID for one instance and returns its user-data and the SecretID's
// accessor (what Revoke takes; it cannot log in). The SecretID's metadata names the instance and
// its image. A role with an AWSIAMRole gets user-data that names its aws auth role and no
// credential at all, and an empty accessor: there is nothing to revoke.
func (i *Issuer) Issue(ctx context.Context, role, instance, image string) ([]byte, string, error) {
	if !i.Wants(role) {
		return nil, "", fmt.Errorf("bootdata: role %q declares no secrets or certificates", role)
	}
	ref, err := i.ref(ctx, role)
	if err != nil {
		return nil, "", fmt.Errorf("bootdata: role %q: %w", role, err)
	}
	if ref.Method == secrets.MethodAWS {
		b, err := Marshal(UserData{Version: Version, Role: role, Vault: NewAWSVault(i.Addr, ref.Mount, role, i.IAMServerID, i.CACert), Secrets: i.Roles[role].Files, Certificates: i.Roles[role].Certificates})
		return b, "", err
	}
	ttl := i.WrapTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	w, err := i.Broker.IssueSecretID(ctx, role, map[string]string{"instance": instance, "image": image}, i.BoundCIDRs, ttl)
	if err != nil {
		return nil, "", fmt.Errorf("bootdata: role %q: %w", role, err)
	}
	if w.SecretIDAccessor == "" {
		return nil, "", errors.New("bootdata: the broker returned no SecretID accessor: the credential could never be revoked")
	}
	ud := UserData{Version: Version, Role: role, Vault: NewVault(i.Addr, ref, w, i.CACert), Secrets: i.Roles[role].Files, Certificates: i.Roles[role].Certificates}
	b, err := Marshal(ud)
	if err != nil {
		// Not delivered: take it back rather than leave it to expire.
		_ = i.Broker.DestroySecretID(ctx, role, w.SecretIDAccessor)
		return nil, "", err
	}
	return b, w.SecretIDAccessor, nil
}

// Revoke destroys a SecretID by its accessor; nil when it is already gone (used or expired), or when
// there is none (an aws role's instances).
func (i *Issuer) Revoke(ctx context.Context, role, accessor string) error {
	if accessor == "" {
		return nil
	}
	return i.Broker.DestroySecretID(ctx, role, accessor)
}
