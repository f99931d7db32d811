// Package local is a store.Store in a bbolt file on the local disk, by
// default <statedir>/state.db. Several processes may share the file.
//
// The database is not held open between calls: every call opens the file,
// takes bbolt's flock (exclusive to write, shared to read), runs one
// transaction and closes it. So processes take turns on the file, and a
// killed process blocks nobody: the kernel drops its flock, and a lease it
// held simply expires.
//
// The file is a bbolt database with a meta bucket "drover" holding the
// format name "drover-state" and the schema version. A file that is not
// such a database is refused with an error naming it, and never written.
package local

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/internal/core"
)

var _ store.Store = (*Store)(nil)

// Config configures a Store; it is also the fleet file's store "local" block.
type Config struct {
	// Path is the state file, created (with its directory) if missing. In a fleet file a relative
	// path is relative to the fleet file; empty means state.db in the state directory.
	Path string `hcl:"path,optional"`
}

// NewDefaultConfig returns the default configuration: the file state.db in the state directory
// (drover's --state, by default .drover next to the fleet file).
func NewDefaultConfig(stateDir string) Config {
	return Config{Path: filepath.Join(stateDir, "state.db")}
}

// newTimeout bounds how long New waits for other processes to let go of
// the file when it checks it. Other drovers hold the lock for one
// transaction at a time (milliseconds); a lock held this long is a stuck
// or foreign process, which the error then names.
const newTimeout = 10 * time.Second

// Store is a store.Store in a bbolt file. It is safe for concurrent use by
// goroutines and by processes.
type Store struct {
	path   string
	sem    chan struct{} // one file access at a time within this process
	closed atomic.Bool
}

// New returns a Store for cfg.Path, creating the file if it does not exist
// and otherwise checking that it is a drover state file of a schema this
// code supports. It waits up to newTimeout for another process's lock.
func New(cfg Config) (*Store, error) {
	return Open(context.Background(), cfg)
}

// Open is New that also gives up when ctx is done, for a caller that
// would rather do without the store than wait for it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("store: no state file path configured")
	}
	s := &Store{path: cfg.Path, sem: make(chan struct{}, 1)}
	if _, err := os.Lstat(s.path); errors.Is(err, fs.ErrNotExist) {
		if err := s.create(); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, newTimeout)
	defer cancel()
	if err := s.do(ctx, false, s.scan); err != nil {
		return nil, err
	}
	return s, nil
}

// scan reads every record, so that damage bbolt notices (or faults on)
// anywhere in the file is reported now, when the file is opened.
func (s *Store) scan(tx *bolt.Tx) error {
	if b := tx.Bucket(bucketKV); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			_, _, err := s.item(b, k, v)
			return err
		}); err != nil {
			return err
		}
	}
	if b := tx.Bucket(bucketLeases); b != nil {
		return b.ForEach(func(k, _ []byte) error {
			_, err := s.lease(tx, string(k))
			return err
		})
	}
	return nil
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (it store.Item, err error) {
	if err := core.CheckKey(key); err != nil {
		return it, err
	}
	err = s.do(ctx, false, func(tx *bolt.Tx) error {
		var ok bool
		it, ok, err = s.item(tx.Bucket(bucketKV), []byte(key), nil)
		if err == nil && !ok {
			err = core.NotFound("key", key)
		}
		return err
	})
	return it, err
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, expectVersion uint64) (version uint64, err error) {
	if err := core.CheckKey(key); err != nil {
		return 0, err
	}
	err = s.do(ctx, true, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketKV)
		if err != nil {
			return err
		}
		cur, _, err := s.item(b, []byte(key), nil)
		if err != nil {
			return err
		}
		if err := core.CheckPut(key, expectVersion, cur.Version); err != nil {
			return err
		}
		if version, err = b.NextSequence(); err != nil {
			return err
		}
		rec := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), version)
		if err := b.Put([]byte(key), append(rec, value...)); err != nil {
			return fmt.Errorf("store: put %q: %w", key, err)
		}
		return nil
	})
	return version, err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expectVersion uint64) error {
	if err := core.CheckKey(key); err != nil {
		return err
	}
	return s.do(ctx, true, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		cur, _, err := s.item(b, []byte(key), nil)
		if err != nil {
			return err
		}
		if err := core.CheckDelete(key, expectVersion, cur.Version); err != nil {
			return err
		}
		return b.Delete([]byte(key))
	})
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) (items []store.Item, err error) {
	err = s.do(ctx, false, func(tx *bolt.Tx) error {
		items = nil
		b := tx.Bucket(bucketKV)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			it, _, err := s.item(b, k, v)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	})
	return items, err
}

// item decodes the record of key in b: raw if not nil, else b's. It reports
// whether the key exists; b may be nil.
func (s *Store) item(b *bolt.Bucket, key, raw []byte) (store.Item, bool, error) {
	if raw == nil && b != nil {
		raw = b.Get(key)
	}
	if raw == nil {
		return store.Item{}, false, nil
	}
	if len(raw) < 8 {
		return store.Item{}, false, fmt.Errorf("store: %s: key %q: corrupt record of %d bytes", s.path, key, len(raw))
	}
	return store.Item{
		Key:     string(key),
		Value:   append([]byte{}, raw[8:]...),
		Version: binary.BigEndian.Uint64(raw),
	}, true, nil
}

// leaseRecord is how a core.Record is stored, as JSON.
type leaseRecord struct {
	Owner    string `json:"owner"`
	Token    uint64 `json:"token"`
	Acquired int64  `json:"acquired"` // Unix nanoseconds
	Expires  int64  `json:"expires"`  // Unix nanoseconds
	Released bool   `json:"released,omitempty"`
}

// lease reads the record of name; the zero Record if there is none.
func (s *Store) lease(tx *bolt.Tx, name string) (core.Record, error) {
	b := tx.Bucket(bucketLeases)
	if b == nil {
		return core.Record{}, nil
	}
	raw := b.Get([]byte(name))
	if raw == nil {
		return core.Record{}, nil
	}
	var r leaseRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return core.Record{}, fmt.Errorf("store: %s: lease %q: corrupt record: %w", s.path, name, err)
	}
	return core.Record{
		Lease: store.Lease{
			Name:     name,
			Owner:    r.Owner,
			Token:    r.Token,
			Acquired: time.Unix(0, r.Acquired),
			Expires:  time.Unix(0, r.Expires),
		},
		Released: r.Released,
	}, nil
}

// updateLease applies fn to the record of name and stores the result.
func (s *Store) updateLease(ctx context.Context, name string, fn func(core.Record, time.Time) (core.Record, error)) (l store.Lease, err error) {
	err = s.do(ctx, true, func(tx *bolt.Tx) error {
		rec, err := s.lease(tx, name)
		if err != nil {
			return err
		}
		// Wall clock only: it is what gets stored and compared across processes.
		if rec, err = fn(rec, time.Now().Round(0)); err != nil {
			return err
		}
		raw, err := json.Marshal(leaseRecord{
			Owner:    rec.Owner,
			Token:    rec.Token,
			Acquired: rec.Acquired.UnixNano(),
			Expires:  rec.Expires.UnixNano(),
			Released: rec.Released,
		})
		if err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketLeases)
		if err != nil {
			return err
		}
		l = rec.Lease
		return b.Put([]byte(name), raw)
	})
	return l, err
}

// Acquire implements store.Store.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (store.Lease, error) {
	if _, err := core.Acquire(core.Record{}, name, owner, ttl, time.Now()); err != nil {
		return store.Lease{}, err // bad arguments: no need to touch the file
	}
	return s.updateLease(ctx, name, func(rec core.Record, now time.Time) (core.Record, error) {
		return core.Acquire(rec, name, owner, ttl, now)
	})
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	return s.updateLease(ctx, l.Name, func(rec core.Record, now time.Time) (core.Record, error) {
		return core.Renew(rec, l, ttl, now)
	})
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	_, err := s.updateLease(ctx, l.Name, func(rec core.Record, _ time.Time) (core.Record, error) {
		return core.Release(rec, l)
	})
	return err
}

// Lease implements store.Store.
func (s *Store) Lease(ctx context.Context, name string) (l store.Lease, err error) {
	err = s.do(ctx, false, func(tx *bolt.Tx) error {
		rec, err := s.lease(tx, name)
		if err != nil {
			return err
		}
		l, err = core.Current(rec, name)
		return err
	})
	return l, err
}

// Close implements store.Store. The file is closed between calls already;
// Close only makes later calls fail.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
