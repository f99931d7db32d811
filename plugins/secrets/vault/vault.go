package vault

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/secrets"
)

// Defaults for a RoleSpec's zero durations.
const (
	DefaultTokenTTL    = 15 * time.Minute
	DefaultSecretIDTTL = 30 * time.Minute
)

// NamePrefix starts the name of every policy and AppRole the broker manages.
const NamePrefix = "drover-"

// Broker is the secrets.Broker over a Vault server's HTTP API. It is safe for concurrent use.
type Broker struct {
	c        *api.Client
	mount    string        // the AppRole auth mount, without slashes: "approle"
	awsMount string        // the aws auth mount, without slashes: "aws"
	wrapTTL  time.Duration // IssueSecretID's default
}

var _ secrets.Broker = (*Broker)(nil)

// New returns a Broker for cfg. An empty AuthMount means "approle", an empty WrapTTL "5m". Nothing is
// sent to Vault until the first call.
func New(cfg *Config) (*Broker, error) {
	if cfg == nil {
		return nil, errors.New("secrets/vault: nil config")
	}
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if c.Token == "" {
		return nil, errNoToken
	}
	wrapTTL, _ := time.ParseDuration(c.WrapTTL) // Validate parsed it
	client, err := newClient(&c)
	if err != nil {
		return nil, err
	}
	client.SetToken(c.Token.Reveal())
	// Wrap only what IssueSecretID asks to wrap, whatever VAULT_WRAP_TTL says.
	client.SetWrappingLookupFunc(func(string, string) string { return "" })
	return &Broker{c: client, mount: c.AuthMount, awsMount: c.AWSMount, wrapTTL: wrapTTL}, nil
}

// normalized is a copy of c with its defaults filled in, validated.
func (c *Config) normalized() (Config, error) {
	n := *c
	n.AuthMount = strings.Trim(n.AuthMount, "/")
	if n.AuthMount == "" {
		n.AuthMount = "approle"
	}
	if n.WrapTTL == "" {
		n.WrapTTL = "5m"
	}
	n.AWSMount = AWSMountOf(&n)
	if err := n.Validate(); err != nil {
		return Config{}, fmt.Errorf("secrets/vault: config: %w", err)
	}
	return n, nil
}

// newClient is a Vault API client for c's address and TLS settings, without a token.
func newClient(c *Config) (*api.Client, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	// Not api.DefaultConfig: it reads VAULT_ADDR, VAULT_AGENT_ADDR, VAULT_SKIP_VERIFY and friends from
	// the environment, and the block is the one place the broker's address and TLS settings come from.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	ac := &api.Config{
		Address:    c.Address,
		Timeout:    timeout,
		MaxRetries: 2,
		HttpClient: &http.Client{
			Transport: tr,
			// The API client follows Vault's redirects itself.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if c.CACert != "" {
		if err := ac.ConfigureTLS(&api.TLSConfig{CACert: c.CACert}); err != nil {
			return nil, fmt.Errorf("secrets/vault: ca_cert %s: %w", c.CACert, err)
		}
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("secrets/vault: %w", err)
	}
	// api.NewClient takes VAULT_TOKEN from the environment; the block's token is the only one.
	client.ClearToken()
	return client, nil
}

// EnsureRole implements secrets.Broker. It also enables the AppRole auth method at the configured
// mount when it is not there yet and the token may (a root-like token may; the controller's token,
// with ControllerPolicy, may not: an operator enables it once).
func (b *Broker) EnsureRole(ctx context.Context, spec secrets.RoleSpec) (secrets.RoleRef, error) {
	if err := checkRole(spec.Role); err != nil {
		return secrets.RoleRef{}, err
	}
	paths, issue, err := checkRolePaths(spec)
	if err != nil {
		return secrets.RoleRef{}, fmt.Errorf("secrets/vault: role %s: %w", spec.Role, err)
	}
	tokenTTL, err := ttl(spec.TokenTTL, DefaultTokenTTL, "token ttl")
	if err != nil {
		return secrets.RoleRef{}, fmt.Errorf("secrets/vault: role %s: %w", spec.Role, err)
	}
	secretIDTTL, err := ttl(spec.SecretIDTTL, DefaultSecretIDTTL, "secret-id ttl")
	if err != nil {
		return secrets.RoleRef{}, fmt.Errorf("secrets/vault: role %s: %w", spec.Role, err)
	}
	if spec.AWSIAMPrincipal != "" {
		return b.ensureAWSRole(ctx, spec, paths, issue, tokenTTL)
	}
	if err := b.ensureMount(ctx); err != nil {
		return secrets.RoleRef{}, err
	}

	name := NamePrefix + spec.Role
	if err := b.c.Sys().PutPolicyWithContext(ctx, name, policy(spec.Role, paths, issue)); err != nil {
		return secrets.RoleRef{}, wrap(err, "role %s: writing policy %s", spec.Role, name)
	}
	cidrs := cidrStrings(spec.BoundCIDRs)
	_, err = b.c.Logical().WriteWithContext(ctx, b.rolePath(spec.Role), withTokenLife(map[string]any{
		"token_policies":          []string{name},
		"token_no_default_policy": false,
		"token_num_uses":          0,
		"bind_secret_id":          true,
		"secret_id_num_uses":      1,
		"secret_id_ttl":           seconds(secretIDTTL),
		"secret_id_bound_cidrs":   cidrs,
		"token_bound_cidrs":       cidrs,
	}, tokenTTL, len(issue) > 0))
	if err != nil {
		return secrets.RoleRef{}, wrap(err, "role %s: writing approle %s", spec.Role, name)
	}
	s, err := b.c.Logical().ReadWithContext(ctx, b.rolePath(spec.Role)+"/role-id")
	if err != nil {
		return secrets.RoleRef{}, wrap(err, "role %s: reading role-id", spec.Role)
	}
	roleID, _ := dataString(s, "role_id")
	if roleID == "" {
		return secrets.RoleRef{}, fmt.Errorf("secrets/vault: role %s: vault returned no role_id", spec.Role)
	}
	return secrets.RoleRef{RoleID: roleID, Mount: b.mount, Policy: name, Method: secrets.MethodAppRole}, nil
}

// ensureMount enables AppRole at b.mount when it is missing. A token that may not list auth methods
// skips the check: writing the role then fails clearly if the mount is missing. A token that may list
// them but not enable one (ControllerPolicy) gets an error saying how to enable it.
func (b *Broker) ensureMount(ctx context.Context) error {
	mountType := func() (string, error) {
		mounts, err := b.c.Sys().ListAuthWithContext(ctx)
		if err != nil {
			return "", err
		}
		if m, ok := mounts[b.mount+"/"]; ok {
			return m.Type, nil
		}
		return "", nil
	}
	typ, err := mountType()
	switch {
	case statusCode(err) == http.StatusForbidden:
		return nil
	case err != nil:
		return wrap(err, "listing auth methods")
	case typ == "approle":
		return nil
	case typ != "":
		return fmt.Errorf("secrets/vault: auth mount %s is of type %s, not approle", b.mount, typ)
	}
	err = b.c.Sys().EnableAuthWithOptionsWithContext(ctx, b.mount, &api.EnableAuthOptions{
		Type:        "approle",
		Description: "drover: one AppRole per role",
	})
	if err != nil {
		if typ, err2 := mountType(); err2 == nil && typ == "approle" { // enabled concurrently
			return nil
		}
		if statusCode(err) == http.StatusForbidden {
			// The controller's token (ControllerPolicy) may not enable auth methods: that takes
			// sudo on sys/auth, which an operator does once.
			return wrap(err, "the approle auth method is not enabled at %s/ and this token may not enable it: enable it once with `vault auth enable -path=%s approle`", b.mount, b.mount)
		}
		return wrap(err, "enabling approle at %s", b.mount)
	}
	return nil
}

// IssueSecretID implements secrets.Broker.
func (b *Broker) IssueSecretID(ctx context.Context, role string, meta map[string]string, cidrs []netip.Prefix, wrapTTL time.Duration) (secrets.Wrapped, error) {
	if err := checkRole(role); err != nil {
		return secrets.Wrapped{}, err
	}
	if wrapTTL == 0 {
		wrapTTL = b.wrapTTL
	}
	if wrapTTL < time.Second {
		return secrets.Wrapped{}, fmt.Errorf("secrets/vault: role %s: wrap ttl %s is below one second", role, wrapTTL)
	}
	data := map[string]any{}
	if len(meta) > 0 {
		j, err := json.Marshal(meta)
		if err != nil {
			return secrets.Wrapped{}, fmt.Errorf("secrets/vault: role %s: metadata: %w", role, err)
		}
		data["metadata"] = string(j)
	}
	if len(cidrs) > 0 {
		data["cidr_list"] = cidrStrings(cidrs)
		data["token_bound_cidrs"] = cidrStrings(cidrs)
	}
	path := b.rolePath(role) + "/secret-id"
	headers := http.Header{"X-Vault-Wrap-TTL": {strconv.FormatInt(seconds(wrapTTL), 10) + "s"}}
	s, err := b.c.Logical().WriteWithRequest(ctx, api.NewLogicalWriteRequest(path, data, headers))
	if err != nil {
		if statusCode(err) == http.StatusNotFound || isRoleMissing(err) {
			return secrets.Wrapped{}, fmt.Errorf("secrets/vault: issue secret-id for role %s: approle %s%s: %w", role, NamePrefix, role, secrets.ErrNotFound)
		}
		return secrets.Wrapped{}, wrap(err, "issue secret-id for role %s", role)
	}
	if s == nil {
		return secrets.Wrapped{}, fmt.Errorf("secrets/vault: issue secret-id for role %s: empty response", role)
	}
	if s.WrapInfo == nil || s.WrapInfo.Token == "" {
		// Something between us and Vault dropped the wrapping: the SecretID came back in clear.
		// Destroy it rather than hand it on.
		if acc, ok := dataString(s, "secret_id_accessor"); ok {
			if err := b.DestroySecretID(ctx, role, acc); err != nil {
				return secrets.Wrapped{}, fmt.Errorf("secrets/vault: issue secret-id for role %s: vault did not wrap the response, and destroying the unwrapped secret-id failed: %w", role, err)
			}
		}
		return secrets.Wrapped{}, fmt.Errorf("secrets/vault: issue secret-id for role %s: vault did not wrap the response (the secret-id was destroyed)", role)
	}
	wi := s.WrapInfo
	w := secrets.Wrapped{
		Token:            secrets.Secret(wi.Token),
		Accessor:         wi.Accessor,
		SecretIDAccessor: wi.WrappedAccessor,
		CreationPath:     wi.CreationPath,
		TTL:              time.Duration(wi.TTL) * time.Second,
		CreationTime:     wi.CreationTime,
	}
	if w.CreationPath != path || w.SecretIDAccessor == "" {
		_ = b.c.Auth().Token().RevokeAccessorWithContext(ctx, w.Accessor)
		if w.SecretIDAccessor != "" {
			_ = b.DestroySecretID(ctx, role, w.SecretIDAccessor)
		}
		return secrets.Wrapped{}, fmt.Errorf("secrets/vault: issue secret-id for role %s: wrapped response has creation path %q and wrapped accessor %q, want %q and a secret-id accessor (revoked)", role, w.CreationPath, w.SecretIDAccessor, path)
	}
	return w, nil
}

// DestroySecretID implements secrets.Broker. Vault answers a destroy of an accessor it does not know
// (or of a role that is gone) with a 500, which the client retries, so the role and the accessor are
// looked up first: both lookups answer 404 for what is gone.
func (b *Broker) DestroySecretID(ctx context.Context, role, secretIDAccessor string) error {
	if err := checkRole(role); err != nil {
		return err
	}
	if secretIDAccessor == "" {
		return fmt.Errorf("secrets/vault: destroy secret-id of role %s: empty accessor", role)
	}
	gone, err := b.secretIDGone(ctx, role, secretIDAccessor)
	if err != nil {
		return wrap(err, "destroy secret-id %s of role %s: lookup", secretIDAccessor, role)
	}
	if gone {
		return nil
	}
	_, err = b.c.Logical().WriteWithContext(ctx, b.rolePath(role)+"/secret-id-accessor/destroy", map[string]any{
		"secret_id_accessor": secretIDAccessor,
	})
	if err == nil {
		return nil
	}
	// Used up or destroyed by someone else between the lookup and the destroy?
	if gone, gerr := b.secretIDGone(ctx, role, secretIDAccessor); gerr == nil && gone {
		return nil
	}
	return wrap(err, "destroy secret-id %s of role %s", secretIDAccessor, role)
}

func (b *Broker) secretIDGone(ctx context.Context, role, accessor string) (bool, error) {
	s, err := b.c.Logical().ReadWithContext(ctx, b.rolePath(role))
	if err != nil {
		return false, err
	}
	if s == nil {
		return true, nil // no role, no SecretIDs
	}
	s, err = b.c.Logical().WriteWithContext(ctx, b.rolePath(role)+"/secret-id-accessor/lookup", map[string]any{
		"secret_id_accessor": accessor,
	})
	if statusCode(err) == http.StatusNotFound || (err == nil && s == nil) {
		return true, nil
	}
	return false, err
}

// Values implements secrets.Broker. The declared paths are read back from the role's policy, which
// EnsureRole wrote. The controller's token, with ControllerPolicy, may read the policy but not the
// paths: Values then returns an error wrapping a *DeniedError.
func (b *Broker) Values(ctx context.Context, role string) ([]secrets.Secret, error) {
	if err := checkRole(role); err != nil {
		return nil, err
	}
	name := NamePrefix + role
	rules, err := b.c.Sys().GetPolicyWithContext(ctx, name)
	if err != nil {
		return nil, wrap(err, "values of role %s: reading policy %s", role, name)
	}
	if rules == "" {
		return nil, fmt.Errorf("secrets/vault: values of role %s: policy %s: %w", role, name, secrets.ErrNotFound)
	}
	out, err := b.readValues(ctx, policyPaths(rules))
	if err != nil {
		return nil, fmt.Errorf("secrets/vault: values of role %s: %w", role, err)
	}
	return out, nil
}

// ReadValues reads every value at paths (exact API paths such as "kv/data/web/tls", as a role's
// secrets declare them), in sorted path order and key order within a path: what Values gives for a
// role whose policy grants those paths, but straight from the paths, so that a role that was never
// rolled out (no policy yet) can be checked too, with any token that may read them. A path that
// holds nothing returns an error wrapping secrets.ErrNotFound; a path the token may not read, one
// wrapping a *DeniedError. Errors name paths, never values.
func (b *Broker) ReadValues(ctx context.Context, paths []string) ([]secrets.Secret, error) {
	ps, err := checkPaths(paths)
	if err != nil {
		return nil, fmt.Errorf("secrets/vault: read values: %w", err)
	}
	out, err := b.readValues(ctx, ps)
	if err != nil {
		return nil, fmt.Errorf("secrets/vault: read values: %w", err)
	}
	return out, nil
}

// readValues reads the paths in order. Its errors have no "secrets/vault: " prefix: the callers add it.
func (b *Broker) readValues(ctx context.Context, paths []string) ([]secrets.Secret, error) {
	var out []secrets.Secret
	for _, p := range paths {
		s, err := b.c.Logical().ReadWithContext(ctx, p)
		if err != nil {
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && !isInvalidToken(re) {
				return nil, &DeniedError{Path: p, Err: &vaultError{re}, Why: "a token with only the " + ControllerPolicyName + " policy may not, by design"}
			}
			return nil, describe(err, "reading %s", p)
		}
		data := kvData(s)
		if data == nil {
			return nil, fmt.Errorf("%s: %w", p, secrets.ErrNotFound)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, secrets.Secret(valueString(data[k])))
		}
	}
	return out, nil
}

// DeniedError is a secret path Vault would not let the token read (403 with a valid token): the
// token's policies grant no read there. The controller's token gets it by design, since
// ControllerPolicy grants nothing under a secrets engine: reading a role's values (for the image
// scan) takes another token.
type DeniedError = secrets.DeniedError

func (b *Broker) rolePath(role string) string {
	return "auth/" + b.mount + "/role/" + NamePrefix + role
}

// kvData is the key/value map of a read: KV version 2 nests it under data (next to metadata), KV
// version 1 and other engines return it as is. A missing or deleted version gives nil.
func kvData(s *api.Secret) map[string]any {
	if s == nil || s.Data == nil {
		return nil
	}
	if _, v2 := s.Data["metadata"]; v2 {
		if d, ok := s.Data["data"].(map[string]any); ok && d != nil {
			return d
		}
		return nil
	}
	return s.Data
}

func valueString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(j)
}

func dataString(s *api.Secret, key string) (string, bool) {
	if s == nil || s.Data == nil {
		return "", false
	}
	v, ok := s.Data[key].(string)
	return v, ok
}

// policy is the role's ACL policy: read on exactly its paths, and update on exactly its issue
// paths (a PKI engine's MOUNT/issue/ROLE). policyPaths reads the read paths back, so the format is
// fixed here.
func policy(role string, paths, issue []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Managed by drover: role %s reads exactly these paths. EnsureRole rewrites it.\n", role)
	for _, p := range paths {
		fmt.Fprintf(&sb, "path %q {\n  capabilities = [\"read\"]\n}\n", p)
	}
	if len(issue) > 0 {
		fmt.Fprintf(&sb, "# Certificates: role %s may have these issued to it, and nothing else of their engines.\n", role)
	}
	for _, p := range issue {
		fmt.Fprintf(&sb, "path %q {\n  capabilities = [\"update\"]\n}\n", p)
	}
	return sb.String()
}

// withTokenLife sets the token lifetime fields of an auth role: a token that lives ttl at most, or,
// for a role that renews certificates for as long as it runs (periodic), one renewable without end
// as long as it is renewed within ttl. Both set every field, so a rewrite from one to the other
// leaves nothing of the first.
func withTokenLife(role map[string]any, ttl time.Duration, periodic bool) map[string]any {
	role["token_ttl"], role["token_max_ttl"], role["token_period"] = seconds(ttl), seconds(ttl), 0
	if periodic {
		role["token_max_ttl"], role["token_period"] = 0, seconds(ttl)
	}
	return role
}

// policyPathRE matches the read blocks of policy only.
var policyPathRE = regexp.MustCompile(`(?m)^path "([^"]+)" \{\n  capabilities = \["read"\]$`)

func policyPaths(rules string) []string {
	var out []string
	for _, m := range policyPathRE.FindAllStringSubmatch(rules, -1) {
		out = append(out, m[1])
	}
	return out
}

var (
	roleRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	mountRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)
	pathRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
)

func validName(mount string) bool { return mountRE.MatchString(mount) }

func checkRole(role string) error {
	if !roleRE.MatchString(role) {
		return fmt.Errorf("secrets/vault: role name %q: want lower-case letters, digits and '-', at most 63", role)
	}
	return nil
}

// issuePathRE is a secrets engine's issue endpoint for one role: MOUNT/issue/ROLE.
var issuePathRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*/issue/[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// checkRolePaths checks a spec's read and issue paths, sorted and without duplicates: at least one of
// either.
func checkRolePaths(spec secrets.RoleSpec) (paths, issue []string, err error) {
	for _, p := range spec.IssuePaths {
		if !issuePathRE.MatchString(p) || slices.Contains(strings.Split(p, "/"), "..") {
			return nil, nil, fmt.Errorf("issue path %q: want an exact issue path such as pki/issue/web (no globs, no leading slash)", p)
		}
	}
	issue = slices.Compact(slices.Sorted(slices.Values(spec.IssuePaths)))
	if len(spec.Paths) == 0 && len(issue) > 0 {
		return nil, issue, nil
	}
	paths, err = checkPaths(spec.Paths)
	return paths, issue, err
}

// checkPaths returns the paths sorted and without duplicates, so that the same set gives the same policy.
func checkPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no secret paths")
	}
	for _, p := range paths {
		if !pathRE.MatchString(p) || slices.Contains(strings.Split(p, "/"), "..") || slices.Contains(strings.Split(p, "/"), ".") {
			return nil, fmt.Errorf("secret path %q: want an exact path such as secret/data/web/tls (no globs, no leading slash)", p)
		}
	}
	out := slices.Clone(paths)
	slices.Sort(out)
	return slices.Compact(out), nil
}

func ttl(d, def time.Duration, what string) (time.Duration, error) {
	switch {
	case d == 0:
		return def, nil
	case d < time.Second:
		return 0, fmt.Errorf("%s %s: want at least one second", what, d)
	}
	return d, nil
}

func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

func cidrStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked().String())
	}
	return out
}

// vaultError is an API error in one line: the status and Vault's messages, without the request URL.
type vaultError struct{ re *api.ResponseError }

func (e *vaultError) Error() string {
	var msgs []string
	for _, m := range e.re.Errors {
		// A multierror reads "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n".
		for line := range strings.Lines(m) {
			line = strings.TrimSpace(line)
			if line == "" || multiErrHeader.MatchString(line) {
				continue
			}
			msgs = append(msgs, strings.TrimPrefix(line, "* "))
		}
	}
	return fmt.Sprintf("vault: %d %s: %s", e.re.StatusCode, http.StatusText(e.re.StatusCode), strings.Join(msgs, "; "))
}

var multiErrHeader = regexp.MustCompile(`^\d+ errors? occurred:$`)

func (e *vaultError) Unwrap() error { return e.re }

// wrap prefixes err with "secrets/vault: " and what was being done. Vault's own errors keep their
// status code and messages; Vault never echoes a token or a SecretID in them.
func wrap(err error, format string, args ...any) error {
	return fmt.Errorf("secrets/vault: %w", describe(err, format, args...))
}

// describe is wrap without the package prefix.
func describe(err error, format string, args ...any) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		err = &vaultError{re}
	}
	if statusCode(err) == http.StatusNotFound {
		return fmt.Errorf("%s: %w: %w", fmt.Sprintf(format, args...), secrets.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

func statusCode(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// isInvalidToken recognises Vault's 403 for a token that is not valid at all (unknown, expired or
// revoked), as opposed to a valid token whose policies deny the request.
func isInvalidToken(re *api.ResponseError) bool {
	for _, m := range re.Errors {
		if strings.Contains(m, "invalid token") {
			return true
		}
	}
	return false
}

// isRoleMissing recognises Vault's answer to a request for a role that does not exist (a 400 or 500
// with a message rather than a 404).
func isRoleMissing(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, m := range re.Errors {
		if strings.Contains(m, "does not exist") || strings.Contains(m, "role not found") || strings.Contains(m, "invalid role name") {
			return true
		}
	}
	return false
}
