package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/etcd"
	"github.com/drover-dev/drover/plugins/store/etcd/etcdtest"
	"github.com/drover-dev/drover/plugins/store/storetest"
)

func lookup(env map[string]string) config.LookupEnv {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// prefixes gives each store of a test a key space of its own in the shared server.
var prefixes atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("test-%d/", prefixes.Add(1)) }

// TestContractFromFactory runs the store contract against a real etcd server, every store opened
// as drover opens it: through the factory, its endpoints from DROVER_ETCD_ENDPOINTS.
func TestContractFromFactory(t *testing.T) {
	url := startEtcd(t)
	env := config.Env{Lookup: lookup(map[string]string{"DROVER_ETCD_ENDPOINTS": url})}
	storetest.Run(t, contract.FromFactory(etcd.Factory(), func(cfg any) {
		cfg.(*etcd.Config).Prefix = uniquePrefix()
	}, env))
}

// open opens a store on the server at url with a prefix of its own, closed when the test ends.
func open(t *testing.T, url, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.New(etcd.Config{Endpoints: []string{url}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestCrashedHolderExpires: a holder that goes away without releasing (its client closed, as when
// the process is killed) stops renewing; its etcd lease runs out after its TTL, the holder key
// goes, and a second Acquire then succeeds with a greater fencing token, even on a machine whose
// clock is an hour behind (so that by its clock the lease has not expired).
func TestCrashedHolderExpires(t *testing.T) {
	url := startEtcd(t)
	prefix := uniquePrefix()
	ctx := t.Context()
	crashed := open(t, url, prefix)
	const ttl = 2 * time.Second
	acquiredBy := time.Now()
	a, err := crashed.Acquire(ctx, "role/web", "runner-a pid 1", ttl)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, url)
	hk := prefix + "holders/role/web"
	resp, err := raw.Get(ctx, hk)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("holder key %s = %v, %v; want one key on an etcd lease", hk, resp, err)
	}
	etcdLease := clientv3.LeaseID(resp.Kvs[0].Lease)
	crashedAt := time.Now()
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}

	behind := open(t, url, prefix)
	etcd.SetClock(behind, func() time.Time { return time.Now().Add(-time.Hour) })
	_, err = behind.Acquire(ctx, "role/web", "runner-b pid 2", time.Minute)
	var held *store.HeldError
	if !errors.As(err, &held) || held.Lease.Owner != "runner-a pid 1" {
		t.Fatalf("Acquire right after the crash = %v, want held by runner-a", err)
	}

	// The etcd lease runs out by itself: nobody revokes it.
	for {
		ttlResp, err := raw.TimeToLive(ctx, etcdLease)
		if err != nil {
			t.Fatal(err)
		}
		if ttlResp.TTL == -1 {
			break
		}
		if time.Since(crashedAt) > ttl+5*time.Second {
			t.Fatalf("etcd lease %x still alive (TTL %ds) %s after the crash", int64(etcdLease), ttlResp.TTL, time.Since(crashedAt))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the crashed holder's etcd lease ran out %s after the crash (lease ttl %s)", time.Since(crashedAt).Round(time.Millisecond), ttl)
	if d := time.Since(acquiredBy); d < ttl {
		t.Errorf("the etcd lease ran out %s after the Acquire began, before the lease's ttl %s", d, ttl)
	}
	if resp, err := raw.Get(ctx, hk); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("holder key %s after its etcd lease ran out = %v, %v; want it gone", hk, resp, err)
	}

	b, err := behind.Acquire(ctx, "role/web", "runner-b pid 2", time.Minute)
	if err != nil {
		t.Fatalf("Acquire after the crashed holder's etcd lease ran out: %v", err)
	}
	if b.Token <= a.Token {
		t.Errorf("takeover token %d, want greater than %d", b.Token, a.Token)
	}
	// The crashed holder, had it survived, has lost the lease.
	again := open(t, url, prefix)
	if _, err := again.Renew(ctx, a, ttl); !errors.Is(err, store.ErrLost) || !strings.Contains(err.Error(), "runner-b") {
		t.Errorf("Renew by the old holder = %v, want ErrLost naming runner-b", err)
	}
}

// TestRenewalsKeepEtcdLeaseAlive: a holder that renews keeps its etcd lease (and holder key) alive
// well past the etcd lease's TTL, and nobody can take the lease meanwhile.
func TestRenewalsKeepEtcdLeaseAlive(t *testing.T) {
	url := startEtcd(t)
	prefix := uniquePrefix()
	ctx := t.Context()
	s := open(t, url, prefix)
	const ttl = 2 * time.Second
	l, err := s.Acquire(ctx, "role/db", "alice", ttl)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, url)
	other := open(t, url, prefix)
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); {
		time.Sleep(ttl / 3)
		if l, err = s.Renew(ctx, l, ttl); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		resp, err := raw.Get(ctx, prefix+"holders/role/db")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("holder key while renewing = %v, %v", resp, err)
		}
		if _, err := other.Acquire(ctx, "role/db", "bob", ttl); !errors.Is(err, store.ErrHeld) {
			t.Fatalf("Acquire by another owner while renewed = %v, want ErrHeld", err)
		}
	}
	if err := s.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
	if resp, err := raw.Get(ctx, prefix+"holders/role/db"); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("holder key after Release = %v, %v; want it gone", resp, err)
	}
}

// TestUnreachableCluster: opening does not contact etcd, and an operation on a cluster that does
// not answer fails after the request timeout, naming the endpoints.
func TestUnreachableCluster(t *testing.T) {
	url := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	f := etcd.Factory()
	cfg, err := f.NewConfig(lookup(map[string]string{"DROVER_ETCD_ENDPOINTS": url}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.(*etcd.Config).RequestTimeout = "1s"
	start := time.Now()
	s, err := f.Open(t.Context(), cfg, config.Env{})
	if err != nil {
		t.Fatalf("Open without a server: %v", err)
	}
	defer s.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open took %s: it should not wait for the cluster", d)
	}
	_, err = s.Get(t.Context(), "k")
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "no answer within 1s") {
		t.Fatalf("Get from an unreachable cluster = %v, want an error naming %s", err, url)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Get gave up after %s, want about 1s", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "k", nil, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v", err)
	}
}
