// Package etcd is a store.Store on an etcd v3 cluster: the state a team and its CI runners share.
//
// Keys live under the block's prefix (by default "drover/"):
//
//	<prefix>kv/<key>       a value, as is; its version is the key's etcd mod revision
//	<prefix>leases/<name>  a lease's record (JSON): owner, fencing token, acquired, expires, released
//	<prefix>holders/<name> the holder's token, attached to an etcd lease of the lease's TTL
//
// drover's own keys under kv/ are rollouts/ROLE/SEQ, images/in-use/IDENTITY and the shared catalog's
// catalog/manifests/HEX and catalog/published/HEX (docs/team-state.md).
//
// Versions are etcd mod revisions: the cluster's revision counter only grows, so every successful
// Put gets a version greater than any handed out before and a re-created key never reuses one.
// Every change is one etcd transaction that compares the key's mod revision with the one expected
// (If(ModRevision(k) == v) Then(Put) Else(Get)), so each method is atomic: it took effect whole or
// not at all, and a call whose outcome is unknown (a timeout) is settled by reading back.
//
// A lease is a record that is never deleted, so that fencing tokens keep increasing across releases
// and expiries, plus a holder key attached to an etcd lease that the holder's renewals keep alive.
// A holder that crashes stops renewing: its etcd lease runs out after its TTL (by the etcd leader's
// clock) and the holder key goes, which frees the lock even for a machine whose clock lags. Expires
// is still what the store's contract says: ttl after the last acquisition or renewal, by the clock
// of the machine that made it, so machines sharing a cluster should keep their clocks in sync (etcd
// itself cannot expire a lease sooner than in whole seconds, at least its minimum TTL).
//
// The store is safe for concurrent use by goroutines, processes and machines. Put is not
// idempotent (a retried Put may conflict with its own success; Get settles it), Delete of a missing
// key is ErrNotFound, and Renew, Release and an Acquire by the holder are idempotent.
//
// Partial failure: every change is one transaction, so it took effect whole or not at all; when its
// answer is lost (a timeout, a connection broken after the commit) the outcome is unknown and a read
// (Get, Lease) settles it. The only effects outside a transaction are on etcd leases: a grant whose
// transaction did not commit is revoked, and one whose outcome is unknown, or whose revoke failed,
// is left to run out after its TTL, holding nothing that matters.
//
// The cluster keeps every revision until it is compacted, and each lease renewal writes one: run
// etcd with --auto-compaction-retention (an hour is plenty; drover never reads old revisions). A
// value is at most etcd's --max-request-bytes (1.5 MiB by default).
package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/internal/core"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store on etcd. It is safe for concurrent use.
type Store struct {
	cli     *clientv3.Client
	prefix  string
	where   string        // the endpoints, for errors
	timeout time.Duration // of each operation
	closed  atomic.Bool
	now     func() time.Time // the clock leases are stamped with; tests move it
}

// New returns a Store for cfg. Without a password it does not contact the cluster: the first
// operation does, so a command that opens the store and then fails for another reason never waits
// for etcd. With a user and password it logs in at once (etcd's client does), within dial_timeout,
// so wrong credentials fail here. Relative TLS paths are relative to the process's directory (the
// factory makes them relative to the fleet file).
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: etcd: %w", err)
	}
	cfg = cfg.resolve("")
	dial, _ := duration(cfg.DialTimeout, time.Second, 5*time.Minute)
	if dial == 0 {
		dial = 5 * time.Second
	}
	timeout, _ := duration(cfg.RequestTimeout, time.Second, time.Hour)
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	where := strings.Join(cfg.Endpoints, ",")
	tc, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("store: etcd %s: %w", where, err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: dial,
		TLS:         tc,
		Username:    cfg.Username,
		Password:    cfg.Password.Reveal(),
		Logger:      zap.NewNop(),
		// A client must not keep a dead connection forever: ping it, so that calls fail over to
		// another endpoint (or fail) instead of hanging on a half-open TCP connection.
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
	})
	if err != nil {
		if cfg.Username != "" {
			return nil, fmt.Errorf("store: etcd %s: logging in as %q with ETCD_PASSWORD: %w", where, cfg.Username, err)
		}
		return nil, fmt.Errorf("store: etcd %s: %w", where, err)
	}
	return &Store{cli: cli, prefix: cfg.Prefix, where: where, timeout: timeout, now: time.Now}, nil
}

// tlsConfig builds the client's TLS settings from the tls block; nil means the system's defaults
// for https:// endpoints.
func tlsConfig(t *TLSConfig) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, fmt.Errorf("tls ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_cert %s: no PEM certificate in it", t.CACert)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls cert %s and key %s: %w", t.Cert, t.Key, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Prefix returns the key prefix everything is stored under.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) kvKey(key string) string      { return s.prefix + "kv/" + key }
func (s *Store) recordKey(name string) string { return s.prefix + "leases/" + name }
func (s *Store) holderKey(name string) string { return s.prefix + "holders/" + name }

// op starts an operation: ErrClosed after Close, ctx's error if it is done, else a context bounded
// by the request timeout.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, fmt.Errorf("%w (etcd %s)", store.ErrClosed, s.where)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: etcd %s: %w", s.where, err)
	}
	c, cancel := context.WithTimeout(ctx, s.timeout)
	return c, cancel, nil
}

// fail wraps an error of the etcd client as the store reports it: the caller's cancellation as
// ctx.Err(), the request timeout as an unanswered cluster.
func (s *Store) fail(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("store: etcd %s: %s: %w", s.where, what, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: etcd %s: %s: no answer within %s (is the cluster up and reachable?): %w", s.where, what, s.timeout, err)
	case s.closed.Load():
		return fmt.Errorf("store: etcd %s: %s: %w", s.where, what, store.ErrClosed)
	}
	return fmt.Errorf("store: etcd %s: %s: %w", s.where, what, err)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	if err := core.CheckKey(key); err != nil {
		return store.Item{}, err
	}
	c, cancel, err := s.op(ctx)
	if err != nil {
		return store.Item{}, err
	}
	defer cancel()
	resp, err := s.cli.Get(c, s.kvKey(key))
	if err != nil {
		return store.Item{}, s.fail(ctx, fmt.Sprintf("get %q", key), err)
	}
	if len(resp.Kvs) == 0 {
		return store.Item{}, core.NotFound("key", key)
	}
	kv := resp.Kvs[0]
	return store.Item{Key: key, Value: kv.Value, Version: uint64(kv.ModRevision)}, nil
}

// Put implements store.Store: one transaction, If(ModRevision(key) == expectVersion) Then(Put)
// Else(Get); a key that does not exist has mod revision 0, so expectVersion 0 creates.
func (s *Store) Put(ctx context.Context, key string, value []byte, expectVersion uint64) (uint64, error) {
	if err := core.CheckKey(key); err != nil {
		return 0, err
	}
	c, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	k := s.kvKey(key)
	resp, err := s.cli.Txn(c).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", int64(expectVersion))).
		Then(clientv3.OpPut(k, string(value))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return 0, s.fail(ctx, fmt.Sprintf("put %q", key), err)
	}
	if !resp.Succeeded {
		return 0, core.CheckPut(key, expectVersion, modRevision(resp))
	}
	return uint64(resp.Header.Revision), nil
}

// Delete implements store.Store, as one transaction like Put's.
func (s *Store) Delete(ctx context.Context, key string, expectVersion uint64) error {
	if err := core.CheckKey(key); err != nil {
		return err
	}
	c, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	k := s.kvKey(key)
	cmp := clientv3.Compare(clientv3.ModRevision(k), "=", int64(expectVersion))
	if expectVersion == 0 {
		cmp = clientv3.Compare(clientv3.ModRevision(k), ">", 0)
	}
	resp, err := s.cli.Txn(c).If(cmp).Then(clientv3.OpDelete(k)).Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("delete %q", key), err)
	}
	if !resp.Succeeded {
		if err := core.CheckDelete(key, expectVersion, modRevision(resp)); err != nil {
			return err
		}
		// Unreachable: the comparison failed, so the key is missing or at another version.
		return fmt.Errorf("store: etcd %s: delete %q: the cluster refused the transaction without a reason", s.where, key)
	}
	return nil
}

// modRevision is the mod revision the Else branch of a transaction read, 0 if the key is missing.
func modRevision(resp *clientv3.TxnResponse) uint64 {
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			return uint64(rr.Kvs[0].ModRevision)
		}
	}
	return 0
}

// List implements store.Store: one range read, sorted by key, so consistent at one revision.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Item, error) {
	c, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := s.cli.Get(c, s.kvKey(prefix), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("list %q", prefix), err)
	}
	items := make([]store.Item, 0, len(resp.Kvs))
	strip := len(s.kvKey(""))
	for _, kv := range resp.Kvs {
		items = append(items, store.Item{Key: string(kv.Key[strip:]), Value: kv.Value, Version: uint64(kv.ModRevision)})
	}
	return items, nil
}

// Close implements store.Store: it closes the connection. Leases stay held: their holder keys go
// when their etcd leases run out, as a crashed process's would.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: etcd %s: close: %w", s.where, err)
	}
	return nil
}
