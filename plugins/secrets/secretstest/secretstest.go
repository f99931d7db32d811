// Package secretstest is the contract suite every secrets.Broker passes (DESIGN.md §3):
//
//	func TestContract(t *testing.T) {
//		secretstest.Run(t, func(t *testing.T) secretstest.Fixture { ... }, secretstest.Options{})
//	}
//
// A Fixture is a broker plus the two things the suite cannot do through the Broker interface: store a
// secret value the way the backend does, and use a wrapped SecretID the way an instance does. Every
// subtest makes roles under names no other subtest uses, so a broker backed by a real server may share
// one server between subtests.
package secretstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// Fixture is what one subtest works with.
type Fixture struct {
	Broker secrets.Broker
	// Put stores data at path, a KV version 2 API path such as "secret/data/web/tls", the way the
	// backend stores it, replacing what was there.
	Put func(t *testing.T, path string, data map[string]string)
	// Login does what an instance does with a wrapped SecretID: unwrap it, log in with roleID and
	// the SecretID, and return a reader that reads a path with the login's token. err is the
	// unwrap's or the login's failure.
	Login func(t *testing.T, roleID string, w secrets.Wrapped) (read func(path string) (map[string]string, error), err error)
	// Advance moves the backend's clock forward by d; nil skips the TTL subtests.
	Advance func(t *testing.T, d time.Duration)
}

// Options adapt the suite to a broker: each subtest's Timeout (zero means 60 seconds), Parallel
// and the subtests to Skip, as every contract suite takes them.
type Options = contract.Options

// Run runs the contract suite; newFixture is called once per subtest.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture, opts Options) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	tests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"EnsureRole/Idempotent", testIdempotent},
		{"IssueSecretID/SingleUse", testSingleUse},
		{"IssueSecretID/CreationPath", testCreationPath},
		{"Login/ExactPaths", testExactPaths},
		{"DestroySecretID/Unused", testDestroyUnused},
		{"DestroySecretID/Gone", testDestroyGone},
		{"Values/Exact", testValues},
		{"Values/MissingPath", testValuesMissing},
		{"UnknownRole", testUnknownRole},
		{"Context/Canceled", testCanceled},
		{"Concurrent/IssueSecretID", testConcurrent},
		{"Redacted", testRedacted},
		{"TTL/Wrap", testWrapTTL},
		{"TTL/SecretID", testSecretIDTTL},
	}
	cases := make([]contract.Case, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, contract.Case{Name: tt.name, Fn: func(t *testing.T, ctx context.Context) {
			f := newFixture(t)
			if f.Broker == nil || f.Put == nil || f.Login == nil {
				t.Fatal("fixture needs Broker, Put and Login")
			}
			tt.fn(&suite{t: t, ctx: ctx, f: f, b: f.Broker, prefix: "c" + randomHex(4)})
		}})
	}
	contract.Run(t, cases, opts)
}

type suite struct {
	t      *testing.T
	ctx    context.Context
	f      Fixture
	b      secrets.Broker
	prefix string // makes this subtest's role names unique
}

// role is a role name no other subtest uses.
func (s *suite) role(name string) string { return s.prefix + "-" + name }

// path is a KV version 2 path under the role.
func path(role, name string) string { return "secret/data/" + role + "/" + name }

// newRole stores one value per path and ensures a role that reads exactly them.
func (s *suite) newRole(name string, spec secrets.RoleSpec, data map[string]map[string]string) (string, secrets.RoleRef) {
	s.t.Helper()
	role := s.role(name)
	spec.Role = role
	for _, p := range slices.Sorted(maps.Keys(data)) {
		full := path(role, p)
		s.f.Put(s.t, full, data[p])
		spec.Paths = append(spec.Paths, full)
	}
	ref, err := s.b.EnsureRole(s.ctx, spec)
	if err != nil {
		s.t.Fatalf("EnsureRole(%s): %v", role, err)
	}
	return role, ref
}

// webRole is a role with one path holding a key and a cert.
func (s *suite) webRole() (string, secrets.RoleRef, map[string]string) {
	s.t.Helper()
	data := map[string]string{"key": "key-" + randomHex(8), "cert": "cert-" + randomHex(8)}
	role, ref := s.newRole("web", secrets.RoleSpec{}, map[string]map[string]string{"tls": data})
	return role, ref, data
}

func (s *suite) issue(role string, wrapTTL time.Duration) secrets.Wrapped {
	s.t.Helper()
	w, err := s.b.IssueSecretID(s.ctx, role, map[string]string{"instance": "i-test"}, nil, wrapTTL)
	if err != nil {
		s.t.Fatalf("IssueSecretID(%s): %v", role, err)
	}
	return w
}

func (s *suite) login(ref secrets.RoleRef, w secrets.Wrapped) func(string) (map[string]string, error) {
	s.t.Helper()
	read, err := s.f.Login(s.t, ref.RoleID, w)
	if err != nil {
		s.t.Fatalf("login with a fresh SecretID: %v", err)
	}
	return read
}

func (s *suite) wantLoginFails(ref secrets.RoleRef, w secrets.Wrapped, what string) {
	s.t.Helper()
	if _, err := s.f.Login(s.t, ref.RoleID, w); err == nil {
		s.t.Errorf("login %s succeeded, want an error", what)
	}
}

// EnsureRole is idempotent: the same spec twice gives the same RoleRef, named after the role, and the
// role still issues SecretIDs that log in.
func testIdempotent(s *suite) {
	role, ref, data := s.webRole()
	spec := secrets.RoleSpec{Role: role, Paths: []string{path(role, "tls")}}
	for range 2 {
		ref2, err := s.b.EnsureRole(s.ctx, spec)
		if err != nil {
			s.t.Fatalf("EnsureRole again: %v", err)
		}
		if ref2 != ref {
			s.t.Fatalf("EnsureRole again: %+v, first %+v", ref2, ref)
		}
	}
	if ref.RoleID == "" || ref.Mount == "" || ref.Policy != "drover-"+role {
		s.t.Errorf("RoleRef = %+v, want a RoleID, a mount and policy drover-%s", ref, role)
	}
	read := s.login(ref, s.issue(role, 0))
	got, err := read(path(role, "tls"))
	if err != nil || !maps.Equal(got, data) {
		s.t.Errorf("read after the second EnsureRole: %v (values equal: %v)", err, maps.Equal(got, data))
	}
}

// The issued wrapped SecretID logs in exactly once: the second login fails.
func testSingleUse(s *suite) {
	role, ref, _ := s.webRole()
	w := s.issue(role, 0)
	s.login(ref, w)
	s.wantLoginFails(ref, w, "a second time with the same wrapped SecretID")
}

// The wrapped response says where it came from: Wrapped.CreationPath is
// bootdata.CreationPath(ref.Mount, role), which drover-boot checks before unwrapping; the wrapping
// token, its accessor and the SecretID's accessor are all there and distinct; TTL is the wrapTTL asked
// for and CreationTime is now.
func testCreationPath(s *suite) {
	role, ref, _ := s.webRole()
	before := time.Now()
	w := s.issue(role, 2*time.Minute)
	if want := bootdata.CreationPath(ref.Mount, role); w.CreationPath != want {
		s.t.Errorf("CreationPath = %q, want %q", w.CreationPath, want)
	}
	if want := "auth/" + ref.Mount + "/role/drover-" + role + "/secret-id"; w.CreationPath != want {
		s.t.Errorf("CreationPath = %q, want %q", w.CreationPath, want)
	}
	if w.Token.Reveal() == "" || w.Accessor == "" || w.SecretIDAccessor == "" {
		s.t.Errorf("Wrapped lacks the token (%v), Accessor %q or SecretIDAccessor %q", w.Token.Reveal() != "", w.Accessor, w.SecretIDAccessor)
	}
	if w.Accessor == w.SecretIDAccessor || w.Accessor == w.Token.Reveal() || w.SecretIDAccessor == w.Token.Reveal() {
		s.t.Errorf("the wrapping token, its accessor and the SecretID accessor are not distinct")
	}
	if w.TTL != 2*time.Minute {
		s.t.Errorf("TTL = %s, want 2m0s", w.TTL)
	}
	if s.f.Advance == nil { // a fake clock may be anywhere
		if d := w.CreationTime.Sub(before); d < -time.Minute || d > time.Minute {
			s.t.Errorf("CreationTime = %s, want about %s", w.CreationTime, before)
		}
	} else if w.CreationTime.IsZero() {
		s.t.Error("CreationTime is zero")
	}
	w0 := s.issue(role, 0)
	if w0.TTL <= 0 {
		s.t.Errorf("TTL with the default wrap ttl = %s, want positive", w0.TTL)
	}
}

// A login reads exactly the role's declared paths: another role's path, an undeclared path next to a
// declared one, and a declared path's metadata are refused.
func testExactPaths(s *suite) {
	role, ref, data := s.webRole()
	other, _ := s.newRole("db", secrets.RoleSpec{}, map[string]map[string]string{"password": {"password": "pw-" + randomHex(8)}})
	s.f.Put(s.t, path(role, "undeclared"), map[string]string{"k": "v-" + randomHex(8)})

	read := s.login(ref, s.issue(role, 0))
	got, err := read(path(role, "tls"))
	if err != nil {
		s.t.Fatalf("read the declared path: %v", err)
	}
	if !maps.Equal(got, data) {
		s.t.Errorf("read the declared path: got other keys or values (keys %v, want %v)", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(data)))
	}
	for _, p := range []string{
		path(other, "password"),
		path(role, "undeclared"),
		"secret/metadata/" + role + "/tls",
	} {
		if _, err := read(p); err == nil {
			s.t.Errorf("read %s with role %s's token succeeded, want refused", p, role)
		}
	}
}

// DestroySecretID makes a SecretID that was never used unusable, whether or not it was unwrapped; a
// second destroy returns nil.
func testDestroyUnused(s *suite) {
	role, ref, _ := s.webRole()
	w := s.issue(role, 0)
	if err := s.b.DestroySecretID(s.ctx, role, w.SecretIDAccessor); err != nil {
		s.t.Fatalf("DestroySecretID: %v", err)
	}
	s.wantLoginFails(ref, w, "with a destroyed SecretID")
	if err := s.b.DestroySecretID(s.ctx, role, w.SecretIDAccessor); err != nil {
		s.t.Errorf("DestroySecretID again: %v, want nil", err)
	}
	// Another SecretID of the role is untouched.
	s.login(ref, s.issue(role, 0))
}

// DestroySecretID returns nil for what is already gone: a used-up SecretID, an accessor the role never
// issued, and a role that does not exist; a used SecretID's token stays valid.
func testDestroyGone(s *suite) {
	role, ref, data := s.webRole()
	w := s.issue(role, 0)
	read := s.login(ref, w)
	if err := s.b.DestroySecretID(s.ctx, role, w.SecretIDAccessor); err != nil {
		s.t.Errorf("DestroySecretID of a used-up SecretID: %v, want nil", err)
	}
	if got, err := read(path(role, "tls")); err != nil || !maps.Equal(got, data) {
		s.t.Errorf("read with the token after destroying its SecretID: %v, want the value", err)
	}
	unknown := "00000000-0000-4000-8000-" + randomHex(6)
	if err := s.b.DestroySecretID(s.ctx, role, unknown); err != nil {
		s.t.Errorf("DestroySecretID of an unknown accessor: %v, want nil", err)
	}
	if err := s.b.DestroySecretID(s.ctx, s.role("nosuch"), unknown); err != nil {
		s.t.Errorf("DestroySecretID for a role that does not exist: %v, want nil", err)
	}
}

// Values returns exactly the declared secrets' values, in path order and key order within a path,
// as Secrets that print as [REDACTED]; a stored path the role does not declare is not read.
func testValues(s *suite) {
	a := map[string]string{"b": "a-b-" + randomHex(8), "a": "a-a-" + randomHex(8)}
	b := map[string]string{"z": "b-z-" + randomHex(8)}
	role, _ := s.newRole("app", secrets.RoleSpec{}, map[string]map[string]string{"one": a, "two": b})
	undeclared := "u-" + randomHex(8)
	s.f.Put(s.t, path(role, "three"), map[string]string{"k": undeclared})

	vals, err := s.b.Values(s.ctx, role)
	if err != nil {
		s.t.Fatalf("Values: %v", err)
	}
	want := []string{a["a"], a["b"], b["z"]}
	got := make([]string, len(vals))
	for i, v := range vals {
		got[i] = v.Reveal()
	}
	if !slices.Equal(got, want) {
		s.t.Errorf("Values gave %d values, want %d in path and key order (equal as sets: %v)", len(got), len(want), equalSets(got, want))
	}
	if slices.Contains(got, undeclared) {
		s.t.Error("Values returned the value of an undeclared path")
	}
	printed := fmt.Sprintf("%v %+v %#v %s %q %x", vals, vals, vals, vals, vals, vals)
	j, _ := json.Marshal(vals)
	for _, v := range want {
		if strings.Contains(printed, v) || strings.Contains(string(j), v) {
			s.t.Error("printing or marshalling Values shows a value")
		}
	}
}

// A declared path that holds nothing makes Values fail with ErrNotFound, naming the path and no
// value.
func testValuesMissing(s *suite) {
	val := "v-" + randomHex(8)
	role, _ := s.newRole("app", secrets.RoleSpec{}, map[string]map[string]string{"one": {"k": val}})
	missing := path(role, "missing")
	if _, err := s.b.EnsureRole(s.ctx, secrets.RoleSpec{Role: role, Paths: []string{path(role, "one"), missing}}); err != nil {
		s.t.Fatalf("EnsureRole with a missing path: %v", err)
	}
	_, err := s.b.Values(s.ctx, role)
	if !errors.Is(err, secrets.ErrNotFound) {
		s.t.Fatalf("Values with a declared path that holds nothing: %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), missing) {
		s.t.Errorf("Values error %q does not name %s", err, missing)
	}
	if strings.Contains(err.Error(), val) {
		s.t.Error("Values error contains a value")
	}
}

// A role EnsureRole did not make: IssueSecretID and Values return errors wrapping ErrNotFound.
func testUnknownRole(s *suite) {
	role := s.role("nosuch")
	if _, err := s.b.IssueSecretID(s.ctx, role, nil, nil, 0); !errors.Is(err, secrets.ErrNotFound) {
		s.t.Errorf("IssueSecretID for an unknown role: %v, want ErrNotFound", err)
	}
	if _, err := s.b.Values(s.ctx, role); !errors.Is(err, secrets.ErrNotFound) {
		s.t.Errorf("Values for an unknown role: %v, want ErrNotFound", err)
	}
}

// A canceled context makes every method fail, and changes nothing: no role is made, no destroy
// happens.
func testCanceled(s *suite) {
	role, ref, _ := s.webRole()
	w := s.issue(role, 0)
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()

	fresh := s.role("fresh")
	s.f.Put(s.t, path(fresh, "tls"), map[string]string{"k": "v"})
	if _, err := s.b.EnsureRole(ctx, secrets.RoleSpec{Role: fresh, Paths: []string{path(fresh, "tls")}}); err == nil {
		s.t.Error("EnsureRole with a canceled context succeeded")
	}
	if _, err := s.b.IssueSecretID(s.ctx, fresh, nil, nil, 0); !errors.Is(err, secrets.ErrNotFound) {
		s.t.Errorf("IssueSecretID for the role a canceled EnsureRole named: %v, want ErrNotFound", err)
	}
	if _, err := s.b.IssueSecretID(ctx, role, nil, nil, 0); err == nil {
		s.t.Error("IssueSecretID with a canceled context succeeded")
	}
	if _, err := s.b.Values(ctx, role); err == nil {
		s.t.Error("Values with a canceled context succeeded")
	}
	if err := s.b.DestroySecretID(ctx, role, w.SecretIDAccessor); err == nil {
		s.t.Error("DestroySecretID with a canceled context succeeded")
	}
	s.login(ref, w) // not destroyed
}

// Concurrent IssueSecretID calls give distinct SecretIDs, each of which logs in.
func testConcurrent(s *suite) {
	role, ref, _ := s.webRole()
	const n = 8
	ws := make([]secrets.Wrapped, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ws[i], errs[i] = s.b.IssueSecretID(s.ctx, role, map[string]string{"instance": fmt.Sprintf("i-%d", i)}, nil, 0)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.t.Fatalf("concurrent IssueSecretID: %v", err)
	}
	tokens, accs, sids := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, w := range ws {
		tokens[w.Token.Reveal()], accs[w.Accessor], sids[w.SecretIDAccessor] = true, true, true
	}
	if len(tokens) != n || len(accs) != n || len(sids) != n {
		s.t.Errorf("%d calls gave %d wrapping tokens, %d accessors and %d SecretID accessors, want all distinct", n, len(tokens), len(accs), len(sids))
	}
	for _, w := range ws {
		s.login(ref, w)
	}
}

// Nothing the broker returns prints a token or a value: a Wrapped in every fmt verb and JSON, and the
// errors of failed calls.
func testRedacted(s *suite) {
	role, ref, data := s.webRole()
	w := s.issue(role, 0)
	tok := w.Token.Reveal()
	printed := fmt.Sprintf("%v %+v %#v", w, w, w) + fmt.Sprint(w) + fmt.Sprint(&w)
	j, _ := json.Marshal(w)
	if strings.Contains(printed, tok) || strings.Contains(string(j), tok) {
		s.t.Error("printing or marshalling a Wrapped shows the wrapping token")
	}
	var errs []error
	_, err := s.b.IssueSecretID(s.ctx, s.role("nosuch"), nil, nil, 0)
	errs = append(errs, err)
	_, err = s.b.Values(s.ctx, s.role("nosuch"))
	errs = append(errs, err)
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	_, err = s.b.IssueSecretID(ctx, role, nil, nil, 0)
	errs = append(errs, err)
	err = s.b.DestroySecretID(ctx, role, w.SecretIDAccessor)
	errs = append(errs, err)
	s.login(ref, w)
	_, err = s.f.Login(s.t, ref.RoleID, w) // used up: the backend's own error
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			s.t.Error("a call that should fail succeeded")
			continue
		}
		msg := fmt.Sprintf("%v %+v %#v", err, err, err)
		if strings.Contains(msg, tok) {
			s.t.Errorf("an error shows the wrapping token")
		}
		for _, v := range data {
			if strings.Contains(msg, v) {
				s.t.Errorf("an error shows a secret value")
			}
		}
	}
}

// The wrapping token stops unwrapping after wrapTTL.
func testWrapTTL(s *suite) {
	if s.f.Advance == nil {
		s.t.Skip("fixture has no Advance")
	}
	role, ref, _ := s.webRole()
	w := s.issue(role, time.Minute)
	s.f.Advance(s.t, time.Minute+time.Second)
	s.wantLoginFails(ref, w, "after the wrapping token expired")
}

// A SecretID stops logging in after the role's SecretIDTTL, and a login's token stops reading after
// the role's TokenTTL.
func testSecretIDTTL(s *suite) {
	if s.f.Advance == nil {
		s.t.Skip("fixture has no Advance")
	}
	spec := secrets.RoleSpec{SecretIDTTL: time.Minute, TokenTTL: 2 * time.Minute}
	role, ref := s.newRole("web", spec, map[string]map[string]string{"tls": {"k": "v-" + randomHex(8)}})
	w := s.issue(role, 10*time.Minute)
	read := s.login(ref, s.issue(role, 10*time.Minute))
	s.f.Advance(s.t, time.Minute+time.Second)
	s.wantLoginFails(ref, w, "after the SecretID expired")
	if _, err := read(path(role, "tls")); err != nil {
		s.t.Errorf("read before the token ttl: %v", err)
	}
	s.f.Advance(s.t, time.Minute)
	if _, err := read(path(role, "tls")); err == nil {
		s.t.Error("read after the token ttl succeeded")
	}
}

func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
