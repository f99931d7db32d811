package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/internal/core"
)

// holder is the value of a lease's holder key, which is attached to an etcd lease.
type holder struct {
	Token uint64 `json:"token"`
	Owner string `json:"owner"`
	TTL   int64  `json:"ttl"` // the etcd lease's granted TTL, seconds
}

// leaseState is what one read of a lease name saw: its record and its holder key.
type leaseState struct {
	rec    core.Record
	recRev int64 // the record's mod revision, 0 if there is none
	holder holder
	hkv    *mvccpb.KeyValue // the holder key, nil if there is none
}

// alive reports whether the holder key of the recorded acquisition still exists: its etcd lease
// has not run out.
func (st leaseState) alive() bool {
	return st.hkv != nil && st.rec.Token != 0 && st.holder.Token == st.rec.Token
}

// lapsed returns the record as the store's rules see it at now: an acquisition whose etcd lease ran
// out (its holder stopped renewing for the etcd TTL, by the leader's clock) has expired, whatever
// this machine's clock says of Expires.
func (st leaseState) lapsed(now time.Time) core.Record {
	rec := st.rec
	if rec.Token != 0 && !rec.Released && !st.alive() && rec.Expires.After(now) {
		rec.Expires = now
	}
	return rec
}

// read reads a lease's record and holder key at one revision.
func (s *Store) read(ctx, c context.Context, name string) (leaseState, error) {
	var st leaseState
	resp, err := s.cli.Txn(c).Then(clientv3.OpGet(s.recordKey(name)), clientv3.OpGet(s.holderKey(name))).Commit()
	if err != nil {
		return st, s.fail(ctx, fmt.Sprintf("lease %q", name), err)
	}
	if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
		st.recRev = kvs[0].ModRevision
		if err := json.Unmarshal(kvs[0].Value, &st.rec); err != nil {
			return st, fmt.Errorf("store: etcd %s: lease %q: %s is not a drover lease record: %w", s.where, name, kvs[0].Key, err)
		}
	}
	if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) > 0 {
		st.hkv = kvs[0]
		if err := json.Unmarshal(kvs[0].Value, &st.holder); err != nil {
			return st, fmt.Errorf("store: etcd %s: lease %q: %s is not a drover lease holder: %w", s.where, name, kvs[0].Key, err)
		}
	}
	return st, nil
}

// etcdLease returns the etcd lease a holder key of rec's acquisition for ttl is attached to: the
// current one, kept alive now, when keep is set and its TTL is long enough; otherwise a new grant
// (fresh), which the caller revokes if it does not use it.
func (s *Store) etcdLease(ctx, c context.Context, st leaseState, ttl time.Duration, keep bool) (id clientv3.LeaseID, granted int64, fresh bool, err error) {
	want := max(int64(math.Ceil(ttl.Seconds())), 1)
	if keep && st.alive() && st.holder.TTL >= want {
		id = clientv3.LeaseID(st.hkv.Lease)
		_, err := s.cli.KeepAliveOnce(c, id)
		if err == nil {
			return id, st.holder.TTL, false, nil
		}
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return 0, 0, false, s.fail(ctx, fmt.Sprintf("lease %q: keeping etcd lease %x alive", st.rec.Name, int64(id)), err)
		}
		// It ran out between the read and now: grant another.
	}
	g, err := s.cli.Grant(c, want)
	if err != nil {
		return 0, 0, false, s.fail(ctx, fmt.Sprintf("lease %q: granting an etcd lease of %ds", st.rec.Name, want), err)
	}
	return g.ID, g.TTL, true, nil
}

// commit writes rec for name if the record is still at the revision st saw, with a new holder key
// on etcd lease id if fresh. It reports false, having revoked the fresh etcd lease, if someone else
// changed the record meanwhile. A holder key moved to a fresh etcd lease frees the old one. When
// the transaction's outcome is unknown (an error), the fresh etcd lease is left alone: the holder
// key may be on it, and if not it runs out by itself.
func (s *Store) commit(ctx, c context.Context, name string, st leaseState, rec core.Record, id clientv3.LeaseID, granted int64, fresh bool) (bool, error) {
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	ops := []clientv3.Op{clientv3.OpPut(s.recordKey(name), string(recJSON))}
	if fresh {
		h, err := json.Marshal(holder{Token: rec.Token, Owner: rec.Owner, TTL: granted})
		if err != nil {
			return false, err
		}
		ops = append(ops, clientv3.OpPut(s.holderKey(name), string(h), clientv3.WithLease(id)))
	}
	resp, err := s.cli.Txn(c).If(clientv3.Compare(clientv3.ModRevision(s.recordKey(name)), "=", st.recRev)).Then(ops...).Commit()
	if err != nil {
		return false, s.fail(ctx, fmt.Sprintf("lease %q", name), err)
	}
	switch {
	case !resp.Succeeded && fresh:
		s.revoke(c, id)
	case resp.Succeeded && fresh && st.hkv != nil && clientv3.LeaseID(st.hkv.Lease) != id:
		s.revoke(c, clientv3.LeaseID(st.hkv.Lease))
	}
	return resp.Succeeded, nil
}

// revoke frees an etcd lease nothing uses any more. It is only tidiness: an unused etcd lease
// runs out by itself after its TTL, so a failure here is not an error.
func (s *Store) revoke(c context.Context, id clientv3.LeaseID) {
	if id != 0 {
		_, _ = s.cli.Revoke(c, id)
	}
}

// Acquire implements store.Store. A new acquisition grants an etcd lease of ttl (in whole seconds,
// at least the cluster's minimum) and attaches the holder key to it; a renewal by the same owner
// keeps the current etcd lease alive. Concurrent acquisitions race on the record's mod revision:
// one wins, the others read again and are refused with a *store.HeldError.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (store.Lease, error) {
	if _, err := core.Acquire(core.Record{}, name, owner, ttl, time.Time{}); err != nil {
		return store.Lease{}, err
	}
	c, cancel, err := s.op(ctx)
	if err != nil {
		return store.Lease{}, err
	}
	defer cancel()
	for {
		st, err := s.read(ctx, c, name)
		if err != nil {
			return store.Lease{}, err
		}
		now := s.now()
		rec, err := core.Acquire(st.lapsed(now), name, owner, ttl, now)
		if err != nil {
			return store.Lease{}, err
		}
		id, granted, fresh, err := s.etcdLease(ctx, c, st, ttl, rec.Token == st.rec.Token)
		if err != nil {
			return store.Lease{}, err
		}
		ok, err := s.commit(ctx, c, name, st, rec, id, granted, fresh)
		if err != nil || ok {
			return rec.Lease, err
		}
	}
}

// Renew implements store.Store: it keeps the holder's etcd lease alive, or grants a longer one
// when ttl outgrew it (or a new one if it ran out while nobody took the name).
func (s *Store) Renew(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	c, cancel, err := s.op(ctx)
	if err != nil {
		return store.Lease{}, err
	}
	defer cancel()
	for {
		st, err := s.read(ctx, c, l.Name)
		if err != nil {
			return store.Lease{}, err
		}
		rec, err := core.Renew(st.rec, l, ttl, s.now())
		if err != nil {
			return store.Lease{}, err
		}
		id, granted, fresh, err := s.etcdLease(ctx, c, st, ttl, true)
		if err != nil {
			return store.Lease{}, err
		}
		ok, err := s.commit(ctx, c, l.Name, st, rec, id, granted, fresh)
		if err != nil || ok {
			return rec.Lease, err
		}
	}
}

// Release implements store.Store: the record is marked released (it keeps the token, so the next
// acquisition's is greater) and the holder key deleted in one transaction; its etcd lease is then
// revoked.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	c, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	for {
		st, err := s.read(ctx, c, l.Name)
		if err != nil {
			return err
		}
		rec, err := core.Release(st.rec, l)
		if err != nil || st.rec.Released {
			return err
		}
		recJSON, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		resp, err := s.cli.Txn(c).
			If(clientv3.Compare(clientv3.ModRevision(s.recordKey(l.Name)), "=", st.recRev)).
			Then(clientv3.OpPut(s.recordKey(l.Name), string(recJSON)), clientv3.OpDelete(s.holderKey(l.Name))).
			Commit()
		if err != nil {
			return s.fail(ctx, fmt.Sprintf("release lease %q", l.Name), err)
		}
		if resp.Succeeded {
			if st.alive() {
				s.revoke(c, clientv3.LeaseID(st.hkv.Lease))
			}
			return nil
		}
	}
}

// Lease implements store.Store. A lease whose etcd lease ran out is reported expired now.
func (s *Store) Lease(ctx context.Context, name string) (store.Lease, error) {
	c, cancel, err := s.op(ctx)
	if err != nil {
		return store.Lease{}, err
	}
	defer cancel()
	st, err := s.read(ctx, c, name)
	if err != nil {
		return store.Lease{}, err
	}
	return core.Current(st.lapsed(s.now()), name)
}
