package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/drover-dev/drover/plugins/store"
)

// The file format: a bbolt database whose meta bucket marks it as drover's.
const (
	formatName    = "drover-state"
	schemaVersion = 1
)

var (
	bucketMeta   = []byte("drover")
	bucketKV     = []byte("kv")
	bucketLeases = []byte("leases")
	keyFormat    = []byte("format")
	keySchema    = []byte("schema")
)

// lockPoll is how long to wait between attempts to lock a file that another
// process (or another Store in this one) is using.
const lockPoll = 20 * time.Millisecond

// notState returns the error for a file at path that is not drover's.
func notState(path, what string) error {
	return fmt.Errorf("store: %s is not a drover state file (%s); move it away or point --state elsewhere", path, what)
}

// create makes a new state file at s.path, unless one exists: it builds the
// database under a temporary name and hard-links it into place, so the path
// never names a partial file and an existing file is never replaced. It
// returns an error wrapping fs.ErrExist if the path exists.
func (s *Store) create() (err error) {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create state directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".new-*")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", s.path, err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }()
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: create %s: %w", s.path, err)
	}
	db, err := bolt.Open(tmpName, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("store: create %s: %w", s.path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(formatName)); err != nil {
			return err
		}
		if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketKV); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketLeases)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", s.path, err)
	}
	if err := os.Link(tmpName, s.path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("store: create %s: %w", s.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable; best effort
		_ = d.Close()
	}
	return nil
}

// do opens the file, runs fn in one transaction (read-write if write) and
// closes the file again, so that other processes can use it in between. It
// waits for the file lock until ctx is done, and turns whatever a damaged
// file makes bbolt do (errors, panics, faults on a truncated mapping) into
// an error naming the file.
func (s *Store) do(ctx context.Context, write bool, fn func(*bolt.Tx) error) (err error) {
	if s.closed.Load() {
		return store.ErrClosed
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("store: %s: %w", s.path, ctx.Err())
	}
	defer func() { <-s.sem }()

	var file *os.File // the file bbolt opened, to close it if bbolt panics
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = file.Close() // releases the flock
			}
			err = notState(s.path, fmt.Sprintf("corrupt: bbolt failed reading it: %v", r))
		}
	}()

	db, err := s.open(ctx, !write, &file)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: close %s: %w", s.path, cerr)
		}
	}()
	if write {
		writeHolder(s.path)
		defer removeHolder(s.path) // before Close releases the lock
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", s.path, err)
	}
	run := func(tx *bolt.Tx) error {
		if err := s.check(tx, file); err != nil {
			return err
		}
		return fn(tx)
	}
	if write {
		return db.Update(run)
	}
	return db.View(run)
}

// open opens s.path with bbolt, retrying while another process holds the
// lock, until ctx is done. It never creates or initialises a file: the
// path must name an existing, non-empty regular file. *file is set to the
// opened file.
func (s *Store) open(ctx context.Context, readOnly bool, file **os.File) (*bolt.DB, error) {
	for {
		var hookErr error
		opts := &bolt.Options{
			// bbolt tries the lock once, then gives up for this Timeout;
			// the loop below waits, honouring ctx.
			Timeout:  time.Millisecond,
			ReadOnly: readOnly,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := s.openFile(name, flag&^os.O_CREATE, perm)
				hookErr = err
				*file = f
				return f, err
			},
		}
		db, err := bolt.Open(s.path, 0o600, opts)
		switch {
		case err == nil:
			return db, nil
		case hookErr != nil:
			return nil, hookErr
		case !errors.Is(err, berrors.ErrTimeout):
			return nil, notState(s.path, fmt.Sprintf("not a bbolt database: %v", err))
		}
		select {
		case <-time.After(lockPoll):
		case <-ctx.Done():
			return nil, fmt.Errorf("store: %s is locked by %s: %w (%w)", s.path, describeHolder(s.path), ErrBusy, ctx.Err())
		}
	}
}

// openFile opens the existing file name and refuses what cannot be a
// database, before bbolt would initialise an empty file.
func (s *Store) openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer appears; the
	// type check below then refuses it. It changes nothing for a regular file.
	f, err := os.OpenFile(name, flag|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, fmt.Errorf("store: open state file: %w", err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("store: open state file: %w", err)
	case fi.IsDir():
		err = notState(s.path, "a directory")
	case !fi.Mode().IsRegular():
		err = notState(s.path, "not a regular file: "+fi.Mode().String())
	case fi.Size() == 0:
		err = notState(s.path, "empty file")
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// check verifies, inside a transaction, that the file is complete and
// carries drover's marker in a schema this code understands.
func (s *Store) check(tx *bolt.Tx, file *os.File) error {
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("store: stat %s: %w", s.path, err)
	}
	if need := tx.Size(); fi.Size() < need {
		return notState(s.path, fmt.Sprintf("truncated: %d bytes, the database needs %d", fi.Size(), need))
	}
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return notState(s.path, "no drover meta bucket")
	}
	if f := meta.Get(keyFormat); string(f) != formatName {
		return notState(s.path, fmt.Sprintf("format %q, want %q", f, formatName))
	}
	raw := meta.Get(keySchema)
	v, err := strconv.ParseUint(string(raw), 10, 32)
	if err != nil || v == 0 {
		return notState(s.path, fmt.Sprintf("bad schema version %q", raw))
	}
	if v > schemaVersion {
		return fmt.Errorf("store: %s has schema version %d, newer than the %d this drover supports; upgrade drover or point --state elsewhere",
			s.path, v, schemaVersion)
	}
	return nil
}
