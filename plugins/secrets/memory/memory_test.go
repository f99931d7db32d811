package memory_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/memory"
	"github.com/drover-dev/drover/plugins/secrets/secretstest"
)

func TestContract(t *testing.T) {
	secretstest.Run(t, func(t *testing.T) secretstest.Fixture {
		b := memory.New()
		var mu sync.Mutex
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		b.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		return secretstest.Fixture{
			Broker: b,
			Put:    func(_ *testing.T, path string, data map[string]string) { b.Put(path, data) },
			Login: func(t *testing.T, roleID string, w secrets.Wrapped) (func(string) (map[string]string, error), error) {
				sid, err := b.Unwrap(t.Context(), w.Token)
				if err != nil {
					return nil, err
				}
				tok, err := b.Login(t.Context(), roleID, sid, netip.Addr{})
				if err != nil {
					return nil, err
				}
				return func(path string) (map[string]string, error) { return b.Read(t.Context(), tok, path) }, nil
			},
			Advance: func(_ *testing.T, d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) },
		}
	}, secretstest.Options{Parallel: true})
}

func TestLoginBoundCIDRs(t *testing.T) {
	b := memory.New()
	ctx := t.Context()
	b.Put("secret/data/web/tls", map[string]string{"k": "v"})
	ref, err := b.EnsureRole(ctx, secrets.RoleSpec{Role: "web", Paths: []string{"secret/data/web/tls"}, BoundCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from string
		ok   bool
	}{{"10.1.2.3", true}, {"192.168.0.1", false}} {
		w, err := b.IssueSecretID(ctx, "web", nil, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, 0)
		if err != nil {
			t.Fatal(err)
		}
		sid, err := b.Unwrap(ctx, w.Token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Login(ctx, ref.RoleID, sid, netip.MustParseAddr(tc.from)); (err == nil) != tc.ok {
			t.Errorf("login from %s: %v, want ok=%v", tc.from, err, tc.ok)
		}
	}
}
