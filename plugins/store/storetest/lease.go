package storetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// shortTTL is the lease lifetime of the expiry tests.
const shortTTL = 200 * time.Millisecond

func mustAcquire(t *testing.T, s store.Store, name, owner string, ttl time.Duration) store.Lease {
	t.Helper()
	l, err := s.Acquire(ctx(t), name, owner, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %q): %v", name, owner, err)
	}
	if l.Name != name || l.Owner != owner || l.Token == 0 {
		t.Fatalf("Acquire(%q, %q) = %+v", name, owner, l)
	}
	return l
}

// sleepPast sleeps until l has expired.
func sleepPast(l store.Lease) {
	time.Sleep(time.Until(l.Expires) + 50*time.Millisecond)
}

func wantLost(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrLost) {
		t.Fatalf("got %v, want ErrLost", err)
	}
}

func sameLease(a, b store.Lease) bool {
	return a.Name == b.Name && a.Owner == b.Owner && a.Token == b.Token &&
		a.Acquired.Equal(b.Acquired) && a.Expires.Equal(b.Expires)
}

func testAcquire(t *testing.T, s store.Store) {
	before := time.Now()
	l := mustAcquire(t, s, "role/web", "alice@host pid 1", time.Minute)
	after := time.Now()
	if l.Acquired.Before(before.Add(-time.Second)) || l.Acquired.After(after.Add(time.Second)) {
		t.Errorf("Acquired = %v, want about %v", l.Acquired, before)
	}
	if d := l.Expires.Sub(l.Acquired); d != time.Minute {
		t.Errorf("Expires - Acquired = %v, want 1m", d)
	}
	got, err := s.Lease(ctx(t), "role/web")
	if err != nil || !sameLease(got, l) {
		t.Fatalf("Lease = %+v, %v; want %+v", got, err, l)
	}
}

func testLeaseNotFound(t *testing.T, s store.Store) {
	_, err := s.Lease(ctx(t), "role/none")
	wantNotFound(t, err, "role/none")
}

func testHeld(t *testing.T, s store.Store) {
	l := mustAcquire(t, s, "role/web", "alice@host pid 123", time.Minute)
	_, err := s.Acquire(ctx(t), "role/web", "bob@host pid 456", time.Minute)
	if !errors.Is(err, store.ErrHeld) {
		t.Fatalf("Acquire of a held lease = %v, want ErrHeld", err)
	}
	var held *store.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("%T is not a *store.HeldError", err)
	}
	if !sameLease(held.Lease, l) {
		t.Errorf("HeldError.Lease = %+v, want %+v", held.Lease, l)
	}
	msg := err.Error()
	for _, want := range []string{"store: ", `"role/web"`, "alice@host pid 123", "since"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	got, err := s.Lease(ctx(t), "role/web")
	if err != nil || !sameLease(got, l) {
		t.Errorf("refused Acquire changed the lease to %+v, %v", got, err)
	}
}

func testSameOwnerRenews(t *testing.T, s store.Store) {
	l1 := mustAcquire(t, s, "role/web", "alice", time.Minute)
	time.Sleep(10 * time.Millisecond)
	l2 := mustAcquire(t, s, "role/web", "alice", 2*time.Minute)
	if l2.Token != l1.Token || !l2.Acquired.Equal(l1.Acquired) {
		t.Errorf("re-Acquire by the holder = %+v, want token %d and Acquired %v kept", l2, l1.Token, l1.Acquired)
	}
	if !l2.Expires.After(l1.Expires) {
		t.Errorf("re-Acquire by the holder did not extend: %v, was %v", l2.Expires, l1.Expires)
	}
}

func testRenew(t *testing.T, s store.Store) {
	l := mustAcquire(t, s, "role/web", "alice", time.Minute)
	time.Sleep(10 * time.Millisecond)
	r, err := s.Renew(ctx(t), l, 2*time.Minute)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if r.Token != l.Token || r.Owner != l.Owner || !r.Acquired.Equal(l.Acquired) || !r.Expires.After(l.Expires) {
		t.Errorf("Renew = %+v, want %+v extended", r, l)
	}
	// Renewing with the old value is the same renewal: idempotent.
	if _, err := s.Renew(ctx(t), l, 2*time.Minute); err != nil {
		t.Errorf("second Renew: %v", err)
	}
	got, err := s.Lease(ctx(t), "role/web")
	if err != nil || got.Token != l.Token || got.Expires.Before(r.Expires) {
		t.Errorf("Lease after Renew = %+v, %v", got, err)
	}
}

func testRenewExpiredNotTaken(t *testing.T, s store.Store) {
	l := mustAcquire(t, s, "role/web", "alice", shortTTL)
	sleepPast(l)
	r, err := s.Renew(ctx(t), l, time.Minute)
	if err != nil {
		t.Fatalf("Renew of an expired lease nobody took: %v", err)
	}
	if r.Token != l.Token || r.Expired(time.Now()) {
		t.Errorf("Renew = %+v, want token %d, not expired", r, l.Token)
	}
	if _, err := s.Acquire(ctx(t), "role/web", "bob", time.Minute); !errors.Is(err, store.ErrHeld) {
		t.Errorf("Acquire after the holder renewed = %v, want ErrHeld", err)
	}
}

func testRelease(t *testing.T, s store.Store) {
	l := mustAcquire(t, s, "role/web", "alice", time.Minute)
	if err := s.Release(ctx(t), l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	_, err := s.Lease(ctx(t), "role/web")
	wantNotFound(t, err, "role/web")
	_, err = s.Renew(ctx(t), l, time.Minute)
	wantLost(t, err)
	b := mustAcquire(t, s, "role/web", "bob", time.Minute)
	if b.Token <= l.Token {
		t.Errorf("token after release = %d, want greater than %d", b.Token, l.Token)
	}
}

func testReleaseTwice(t *testing.T, s store.Store) {
	l := mustAcquire(t, s, "role/web", "alice", time.Minute)
	for i := range 2 {
		if err := s.Release(ctx(t), l); err != nil {
			t.Fatalf("Release #%d: %v", i+1, err)
		}
	}
}

func testExpireAndTakeover(t *testing.T, s store.Store) {
	a := mustAcquire(t, s, "role/web", "alice", shortTTL)
	if _, err := s.Acquire(ctx(t), "role/web", "bob", shortTTL); !errors.Is(err, store.ErrHeld) {
		t.Fatalf("Acquire before expiry = %v, want ErrHeld", err)
	}
	sleepPast(a)
	got, err := s.Lease(ctx(t), "role/web")
	if err != nil || got.Token != a.Token || !got.Expired(time.Now()) {
		t.Fatalf("Lease of an expired lease = %+v, %v; want it, expired", got, err)
	}
	b := mustAcquire(t, s, "role/web", "bob", time.Minute)
	if b.Token <= a.Token {
		t.Fatalf("takeover token %d, want greater than %d", b.Token, a.Token)
	}

	// The old holder lost it, and cannot disturb the new one.
	_, err = s.Renew(ctx(t), a, time.Minute)
	wantLost(t, err)
	if !strings.Contains(err.Error(), "bob") || !strings.Contains(err.Error(), strconv.FormatUint(b.Token, 10)) {
		t.Errorf("message %q does not name the new holder and token", err)
	}
	wantLost(t, s.Release(ctx(t), a))
	if _, err := s.Acquire(ctx(t), "role/web", "alice", time.Minute); !errors.Is(err, store.ErrHeld) {
		t.Errorf("old holder re-Acquire = %v, want ErrHeld", err)
	}
	got, err = s.Lease(ctx(t), "role/web")
	if err != nil || !sameLease(got, b) {
		t.Fatalf("Lease = %+v, %v; want %+v", got, err, b)
	}
	if _, err := s.Renew(ctx(t), b, time.Minute); err != nil {
		t.Errorf("new holder Renew: %v", err)
	}
}

func testFencingTokenMonotonic(t *testing.T, s store.Store) {
	var last uint64
	owners := []string{"alice", "bob", "alice", "carol", "carol"}
	for i, owner := range owners {
		l := mustAcquire(t, s, "role/web", owner, time.Minute)
		if l.Token <= last {
			t.Fatalf("acquisition %d got token %d, want greater than %d", i, l.Token, last)
		}
		last = l.Token
		if err := s.Release(ctx(t), l); err != nil {
			t.Fatal(err)
		}
	}
	// Expiry takeovers increase it too.
	a := mustAcquire(t, s, "role/web", "alice", shortTTL)
	sleepPast(a)
	if b := mustAcquire(t, s, "role/web", "alice", time.Minute); b.Token <= a.Token || a.Token <= last {
		t.Fatalf("tokens %d, %d, %d do not increase", last, a.Token, b.Token)
	}
}

func testConcurrentAcquire(t *testing.T, s store.Store) {
	n := race(t, 8, func(i int) error {
		_, err := s.Acquire(ctx(t), "role/web", "owner-"+strconv.Itoa(i), time.Minute)
		return err
	})
	if n != 1 {
		t.Fatalf("%d concurrent Acquires succeeded, want 1", n)
	}
}

func testLeaseInvalidArguments(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name, owner string
		ttl         time.Duration
	}{
		{"", "alice", time.Minute},
		{"role/web", "", time.Minute},
		{"role/web", "alice", 0},
		{"role/web", "alice", -time.Second},
	} {
		if _, err := s.Acquire(ctx(t), tc.name, tc.owner, tc.ttl); err == nil || errors.Is(err, store.ErrHeld) {
			t.Errorf("Acquire(%q, %q, %v) = %v, want an argument error", tc.name, tc.owner, tc.ttl, err)
		}
	}
	l := mustAcquire(t, s, "role/web", "alice", time.Minute)
	if _, err := s.Renew(ctx(t), l, 0); err == nil {
		t.Error("Renew with ttl 0 succeeded")
	}
	wantLost(t, s.Release(ctx(t), store.Lease{Name: "role/none", Owner: "alice", Token: 1}))
}
