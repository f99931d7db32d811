// Package secrets defines how drover hands secrets to instances without ever baking them (DESIGN.md
// §6): a Broker keeps one policy and one AppRole per role, issues one single-use, response-wrapped
// SecretID per new instance, and reads a role's values only so that the image scan can check that none
// of them ended up in an image.
//
// Secret is the string type for every value that must not be printed: tokens, SecretIDs and the values
// themselves. It prints, formats, logs and marshals as [REDACTED]; Reveal is the one way to the value.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// Redacted is what a Secret prints as, whatever the verb.
const Redacted = "[REDACTED]"

// ErrNotFound means the role (its policy or AppRole) or one of its declared secret paths does not exist.
// DestroySecretID never returns it: destroying what is already gone succeeds.
var ErrNotFound = errors.New("secrets: not found")

// Secret is a value that must never appear in a log, an error, the state store or an image. Every way
// the standard library prints or encodes it (fmt with any verb, encoding/json, encoding.TextMarshaler,
// log/slog) gives [REDACTED]; Reveal returns the value, for the one place that sends it on.
//
// Two holes the standard library leaves: fmt cannot call methods on unexported struct fields, so a
// Secret in an unexported field of a struct printed whole prints in clear (keep Secrets in exported
// fields, or give the struct its own String method); and encoding/json writes map keys of a string
// kind as they are, so never key a map by a Secret.
type Secret string

// Reveal returns the value. Call it only where the value leaves the process on purpose (a Vault
// request, user-data) and never to build a message.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter, so that no verb (%x, %q, %d ...) reaches the value.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (map keys, YAML, TOML, slog's text handler).
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// RoleSpec is what a role may read and how long what it gets lives.
type RoleSpec struct {
	// Role is the fleet role name: lower-case letters, digits and '-', such as "web". The policy
	// and the AppRole are both named "drover-" + Role.
	Role string
	// Paths are the exact API paths the role may read, KV version 2 style: "secret/data/web/tls".
	// No globs: the policy grants read on exactly these paths and nothing else.
	Paths []string
	// IssuePaths are the exact paths the role may write to (update) to have something issued to
	// it, such as a PKI engine's "pki/issue/web": nothing else under their mounts. A role with
	// IssuePaths gets a periodic token (renewable for as long as it is renewed within TokenTTL), so
	// an instance can renew its certificates for as long as it runs.
	IssuePaths []string
	// TokenTTL is the lifetime (and max lifetime) of the token a SecretID login gets. Zero means
	// the implementation's default.
	TokenTTL time.Duration
	// SecretIDTTL is how long an issued SecretID stays usable if nobody logs in with it. Zero means
	// the implementation's default.
	SecretIDTTL time.Duration
	// BoundCIDRs, when not empty, are the only networks a SecretID login may come from and the
	// only networks its token may be used from.
	BoundCIDRs []netip.Prefix
	// AWSIAMPrincipal, when set, is the ARN of the IAM role the role's instances run as
	// ("arn:aws:iam::123456789012:role/web"). Instances then log in with Vault's aws auth method
	// (iam type) by signing a request with that identity's credentials: EnsureRole makes an aws
	// auth role instead of an AppRole, nothing is delivered, and IssueSecretID is not used.
	AWSIAMPrincipal string
}

// RoleRef names what EnsureRole made. None of it is secret: a RoleID alone logs nobody in.
type RoleRef struct {
	RoleID string // empty for MethodAWS
	Mount  string // the auth mount, such as "approle" or "aws"
	Policy string // the policy name, such as "drover-web"
	Method string // MethodAppRole, or MethodAWS when the spec had an AWSIAMPrincipal
}

// Login methods of a RoleRef.
const (
	MethodAppRole = "approle"
	MethodAWS     = "aws"
)

// Wrapped is a response-wrapped SecretID as issued to one instance.
type Wrapped struct {
	// Token is the wrapping token: the only thing user-data carries. Unwrapping it once gives the
	// SecretID; a second unwrap fails.
	Token Secret
	// Accessor is the wrapping token's accessor: it can look the wrapping token up or revoke it,
	// never unwrap it.
	Accessor string
	// SecretIDAccessor is the accessor of the wrapped SecretID (Vault's wrapped_accessor), the
	// handle DestroySecretID takes. It is not the same as Accessor.
	SecretIDAccessor string
	// CreationPath is the path that created the wrapped response, such as
	// "auth/approle/role/drover-web/secret-id". drover-boot checks it before unwrapping.
	CreationPath string
	// TTL is the wrapping token's lifetime from CreationTime.
	TTL          time.Duration
	CreationTime time.Time
}

// Broker keeps per-role policies and AppRoles and issues SecretIDs to instances.
//
// Implementations are safe for concurrent use. Every method honours ctx. Errors never contain a token,
// a SecretID or a secret value. Calls for different roles are independent; concurrent EnsureRole calls
// for the same role converge on whichever spec was written last.
type Broker interface {
	// EnsureRole makes the role's policy and AppRole exactly spec: a policy that grants read on
	// exactly spec.Paths, and an AppRole whose SecretIDs are single-use, live spec.SecretIDTTL and
	// log in to tokens with only that policy. It is idempotent: calling it again with the same spec
	// changes nothing; with another spec it replaces both. It writes the policy first, then the
	// AppRole: after a failure part way the policy may be the new one and the AppRole the old one,
	// and a retry of the same call repairs it.
	EnsureRole(ctx context.Context, spec RoleSpec) (RoleRef, error)

	// IssueSecretID issues one new single-use SecretID for role's AppRole, response-wrapped with a
	// wrapping token that lives wrapTTL (zero means the implementation's default). meta (such as
	// the instance ID and the image digest) is stored with the SecretID and copied to the metadata
	// of the token a login gets; it must not hold secrets. cidrs, when not empty, bind where the
	// SecretID may log in from and where its token may be used.
	//
	// It is not idempotent: each call issues another SecretID. A caller that retries after an
	// error, or launches no instance after all, destroys what it got with DestroySecretID. When the
	// response is lost after Vault issued the SecretID, the orphan is harmless: nobody holds its
	// wrapping token, which expires after wrapTTL, and the SecretID after the role's SecretIDTTL.
	// A role that EnsureRole did not make returns an error wrapping ErrNotFound.
	IssueSecretID(ctx context.Context, role string, meta map[string]string, cidrs []netip.Prefix, wrapTTL time.Duration) (Wrapped, error)

	// DestroySecretID destroys the SecretID whose accessor is secretIDAccessor
	// (Wrapped.SecretIDAccessor), so that it can no longer log in, whether it was unwrapped or not.
	// It is idempotent: a SecretID that is already gone (destroyed, used up, expired) returns nil.
	// Tokens the SecretID already logged in to stay valid until they expire.
	DestroySecretID(ctx context.Context, role, secretIDAccessor string) error

	// Values reads every value at the role's declared paths, in path order and key order within a
	// path, so that the image scan can check that none of them is in an image. A role that
	// EnsureRole did not make, or a declared path that holds nothing, returns an error wrapping
	// ErrNotFound (naming the path, never a value).
	Values(ctx context.Context, role string) ([]Secret, error)
}
