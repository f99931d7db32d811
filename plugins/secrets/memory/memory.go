// Package memory is an in-memory secrets.Broker with Vault's semantics, for tests: per-role policies
// (sets of exact paths), AppRoles with single-use SecretIDs, response-wrapped SecretIDs whose wrapping
// token unwraps once, TTLs on an injectable clock, and a KV store. Unwrap, Login and Read do what an
// instance does with a wrapping token; Put stores a value the way an operator would.
package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// Defaults for zero durations, as the Vault broker's.
const (
	DefaultTokenTTL    = 15 * time.Minute
	DefaultSecretIDTTL = 30 * time.Minute
	DefaultWrapTTL     = 5 * time.Minute
)

// Mount is the AppRole mount the broker reports in RoleRef and creation paths.
const Mount = "approle"

// ErrDenied is what Unwrap, Login and Read return for a token or SecretID that is unknown, used up,
// expired or not allowed the path.
var ErrDenied = errors.New("secrets/memory: permission denied")

// Broker is an in-memory secrets.Broker. It is safe for concurrent use. The zero value is not usable:
// call New.
type Broker struct {
	mu     sync.Mutex
	now    func() time.Time
	kv     map[string]map[string]string
	roles  map[string]*role      // by role name
	wraps  map[string]*wrapping  // by wrapping token
	sids   map[string]*secretID  // by SecretID
	tokens map[string]*tokenInfo // by client token
}

type role struct {
	spec   secrets.RoleSpec
	roleID string
	paths  []string // sorted, unique: the policy
	byAcc  map[string]string
}

type wrapping struct {
	secretID, accessor string
	expires            time.Time
}

type secretID struct {
	role, accessor string
	expires        time.Time
	meta           map[string]string
	cidrs          []netip.Prefix
}

type tokenInfo struct {
	role    string // the policy is the role's current one, as Vault looks policies up by name
	expires time.Time
	meta    map[string]string
}

var _ secrets.Broker = (*Broker)(nil)

// New returns an empty broker on the wall clock.
func New() *Broker {
	return &Broker{
		now:    time.Now,
		kv:     map[string]map[string]string{},
		roles:  map[string]*role{},
		wraps:  map[string]*wrapping{},
		sids:   map[string]*secretID{},
		tokens: map[string]*tokenInfo{},
	}
}

// SetClock makes the broker read the time from now (for TTL tests).
func (b *Broker) SetClock(now func() time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = now
}

// Put stores data at path (a KV version 2 API path such as "secret/data/web/tls"), replacing what was
// there.
func (b *Broker) Put(path string, data map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kv[path] = maps.Clone(data)
}

// EnsureRole implements secrets.Broker.
func (b *Broker) EnsureRole(ctx context.Context, spec secrets.RoleSpec) (secrets.RoleRef, error) {
	if err := ctx.Err(); err != nil {
		return secrets.RoleRef{}, fmt.Errorf("secrets/memory: ensure role %s: %w", spec.Role, err)
	}
	if err := checkRole(spec.Role); err != nil {
		return secrets.RoleRef{}, err
	}
	var paths []string
	if len(spec.Paths) > 0 || len(spec.IssuePaths) == 0 { // a role with certificates only reads nothing
		var err error
		if paths, err = checkPaths(spec.Paths); err != nil {
			return secrets.RoleRef{}, fmt.Errorf("secrets/memory: role %s: %w", spec.Role, err)
		}
	}
	if spec.TokenTTL < 0 || (spec.TokenTTL > 0 && spec.TokenTTL < time.Second) {
		return secrets.RoleRef{}, fmt.Errorf("secrets/memory: role %s: token ttl %s: want at least one second", spec.Role, spec.TokenTTL)
	}
	if spec.SecretIDTTL < 0 || (spec.SecretIDTTL > 0 && spec.SecretIDTTL < time.Second) {
		return secrets.RoleRef{}, fmt.Errorf("secrets/memory: role %s: secret-id ttl %s: want at least one second", spec.Role, spec.SecretIDTTL)
	}
	spec.Paths = paths
	spec.BoundCIDRs = slices.Clone(spec.BoundCIDRs)
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roles[spec.Role]
	if r == nil {
		r = &role{roleID: uuid(), byAcc: map[string]string{}}
		b.roles[spec.Role] = r
	}
	r.spec, r.paths = spec, paths
	if spec.AWSIAMPrincipal != "" {
		return secrets.RoleRef{Mount: "aws", Policy: secretsName(spec.Role), Method: secrets.MethodAWS}, nil
	}
	return secrets.RoleRef{RoleID: r.roleID, Mount: Mount, Policy: secretsName(spec.Role), Method: secrets.MethodAppRole}, nil
}

// IssueSecretID implements secrets.Broker.
func (b *Broker) IssueSecretID(ctx context.Context, roleName string, meta map[string]string, cidrs []netip.Prefix, wrapTTL time.Duration) (secrets.Wrapped, error) {
	if err := ctx.Err(); err != nil {
		return secrets.Wrapped{}, fmt.Errorf("secrets/memory: issue secret-id for role %s: %w", roleName, err)
	}
	if err := checkRole(roleName); err != nil {
		return secrets.Wrapped{}, err
	}
	if wrapTTL == 0 {
		wrapTTL = DefaultWrapTTL
	}
	if wrapTTL < time.Second {
		return secrets.Wrapped{}, fmt.Errorf("secrets/memory: role %s: wrap ttl %s is below one second", roleName, wrapTTL)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roles[roleName]
	if r == nil {
		return secrets.Wrapped{}, fmt.Errorf("secrets/memory: issue secret-id for role %s: approle %s: %w", roleName, secretsName(roleName), secrets.ErrNotFound)
	}
	if r.spec.AWSIAMPrincipal != "" {
		return secrets.Wrapped{}, fmt.Errorf("secrets/memory: issue secret-id for role %s: it logs in with the aws auth method, not a secret-id", roleName)
	}
	now := b.now()
	ttl := r.spec.SecretIDTTL
	if ttl == 0 {
		ttl = DefaultSecretIDTTL
	}
	sid, sacc := uuid(), uuid()
	b.sids[sid] = &secretID{role: roleName, accessor: sacc, expires: now.Add(ttl), meta: maps.Clone(meta), cidrs: slices.Clone(cidrs)}
	r.byAcc[sacc] = sid
	tok := "hvs.mem." + random(24)
	w := secrets.Wrapped{
		Token:            secrets.Secret(tok),
		Accessor:         random(12),
		SecretIDAccessor: sacc,
		CreationPath:     "auth/" + Mount + "/role/" + secretsName(roleName) + "/secret-id",
		TTL:              wrapTTL,
		CreationTime:     now,
	}
	b.wraps[tok] = &wrapping{secretID: sid, accessor: w.Accessor, expires: now.Add(wrapTTL)}
	return w, nil
}

// DestroySecretID implements secrets.Broker.
func (b *Broker) DestroySecretID(ctx context.Context, roleName, secretIDAccessor string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("secrets/memory: destroy secret-id %s of role %s: %w", secretIDAccessor, roleName, err)
	}
	if err := checkRole(roleName); err != nil {
		return err
	}
	if secretIDAccessor == "" {
		return fmt.Errorf("secrets/memory: destroy secret-id of role %s: empty accessor", roleName)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roles[roleName]
	if r == nil {
		return nil
	}
	if sid, ok := r.byAcc[secretIDAccessor]; ok {
		delete(r.byAcc, secretIDAccessor)
		delete(b.sids, sid)
	}
	return nil
}

// Values implements secrets.Broker.
func (b *Broker) Values(ctx context.Context, roleName string) ([]secrets.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("secrets/memory: values of role %s: %w", roleName, err)
	}
	if err := checkRole(roleName); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roles[roleName]
	if r == nil {
		return nil, fmt.Errorf("secrets/memory: values of role %s: policy %s: %w", roleName, secretsName(roleName), secrets.ErrNotFound)
	}
	var out []secrets.Secret
	for _, p := range r.paths {
		data, ok := b.kv[p]
		if !ok {
			return nil, fmt.Errorf("secrets/memory: values of role %s: %s: %w", roleName, p, secrets.ErrNotFound)
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			out = append(out, secrets.Secret(data[k]))
		}
	}
	return out, nil
}

// Unwrap does sys/wrapping/unwrap: it returns the wrapped SecretID once, and ErrDenied for a wrapping
// token that is unknown, already unwrapped or expired.
func (b *Broker) Unwrap(ctx context.Context, token secrets.Secret) (secrets.Secret, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("secrets/memory: unwrap: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.wraps[token.Reveal()]
	if !ok {
		return "", fmt.Errorf("secrets/memory: unwrap: wrapping token is not valid or does not exist: %w", ErrDenied)
	}
	delete(b.wraps, token.Reveal())
	if !b.now().Before(w.expires) {
		return "", fmt.Errorf("secrets/memory: unwrap: wrapping token expired: %w", ErrDenied)
	}
	return secrets.Secret(w.secretID), nil
}

// Login does auth/approle/login from address from (the zero Addr skips the CIDR checks): it uses the
// SecretID up and returns a client token with the role's policy.
func (b *Broker) Login(ctx context.Context, roleID string, sid secrets.Secret, from netip.Addr) (secrets.Secret, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("secrets/memory: login: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sids[sid.Reveal()]
	if !ok {
		return "", fmt.Errorf("secrets/memory: login: invalid secret id: %w", ErrDenied)
	}
	r := b.roles[s.role]
	if r == nil || r.roleID != roleID {
		return "", fmt.Errorf("secrets/memory: login: invalid role or secret id: %w", ErrDenied)
	}
	now := b.now()
	// Single use: a login, good or bad, uses the SecretID up, as Vault does with secret_id_num_uses 1.
	delete(b.sids, sid.Reveal())
	delete(r.byAcc, s.accessor)
	if !now.Before(s.expires) {
		return "", fmt.Errorf("secrets/memory: login: secret id expired: %w", ErrDenied)
	}
	if from.IsValid() && (!inAny(from, r.spec.BoundCIDRs) || !inAny(from, s.cidrs)) {
		return "", fmt.Errorf("secrets/memory: login: source address %s not allowed: %w", from, ErrDenied)
	}
	ttl := r.spec.TokenTTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	tok := "hvs.mem." + random(24)
	b.tokens[tok] = &tokenInfo{role: s.role, expires: now.Add(ttl), meta: s.meta}
	return secrets.Secret(tok), nil
}

// Read reads path with a client token from Login: ErrDenied unless the token is live and its role's
// policy grants path; secrets.ErrNotFound when nothing is stored there.
func (b *Broker) Read(ctx context.Context, token secrets.Secret, path string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("secrets/memory: read %s: %w", path, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ti, ok := b.tokens[token.Reveal()]
	if !ok || !b.now().Before(ti.expires) {
		return nil, fmt.Errorf("secrets/memory: read %s: invalid token: %w", path, ErrDenied)
	}
	r := b.roles[ti.role]
	if r == nil || !slices.Contains(r.paths, path) {
		return nil, fmt.Errorf("secrets/memory: read %s: %w", path, ErrDenied)
	}
	data, ok := b.kv[path]
	if !ok {
		return nil, fmt.Errorf("secrets/memory: read %s: %w", path, secrets.ErrNotFound)
	}
	return maps.Clone(data), nil
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	if len(ps) == 0 {
		return true
	}
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

func secretsName(role string) string { return "drover-" + role }

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	s := random(16)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

var (
	roleRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	pathRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
)

func checkRole(role string) error {
	if !roleRE.MatchString(role) {
		return fmt.Errorf("secrets/memory: role name %q: want lower-case letters, digits and '-', at most 63", role)
	}
	return nil
}

func checkPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no secret paths")
	}
	for _, p := range paths {
		parts := strings.Split(p, "/")
		if !pathRE.MatchString(p) || slices.Contains(parts, "..") || slices.Contains(parts, ".") {
			return nil, fmt.Errorf("secret path %q: want an exact path such as secret/data/web/tls (no globs, no leading slash)", p)
		}
	}
	out := slices.Clone(paths)
	slices.Sort(out)
	return slices.Compact(out), nil
}
