package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/local"
	"github.com/drover-dev/drover/plugins/store/storetest"
)

func newStore(t *testing.T, path string) *local.Store {
	t.Helper()
	s, err := local.New(local.Config{Path: path})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, filepath.Join(t.TempDir(), "state", "state.db"))
	})
}

// TestContractFromFactory runs the suite on stores opened as drover opens them: through the local
// type's factory, with its defaults (state.db in the state directory).
func TestContractFromFactory(t *testing.T) {
	storetest.Run(t, contract.FromFactory(local.Factory(), nil, config.Env{}))
}

func TestPersistsAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	a := newStore(t, path)
	v, err := a.Put(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Acquire(ctx, "role/web", "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b := newStore(t, path)
	it, err := b.Get(ctx, "k")
	if err != nil || string(it.Value) != "v" || it.Version != v {
		t.Fatalf("Get from a second store = %+v, %v", it, err)
	}
	got, err := b.Lease(ctx, "role/web")
	if err != nil || got != l {
		t.Fatalf("Lease from a second store = %+v, %v; want %+v", got, err, l)
	}
	if _, err := b.Acquire(ctx, "role/web", "bob", time.Minute); !errors.Is(err, store.ErrHeld) {
		t.Fatalf("Acquire from a second store = %v, want ErrHeld", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	if got := local.NewDefaultConfig("/srv/fleet/.drover").Path; got != "/srv/fleet/.drover/state.db" {
		t.Errorf("default path: %q", got)
	}
	if _, err := local.New(local.Config{}); err == nil {
		t.Error("New with an empty path succeeded")
	}
}

// TestWaitsForLockUntilContextDone holds the file's flock the way another
// process would and checks that calls wait, then give up with ctx.
func TestWaitsForLockUntilContextDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := newStore(t, path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get while locked = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("Get gave up after %v, want about 200ms", d)
	}

	// Once the lock is free, a waiting call proceeds.
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(t.Context(), "k", []byte("v"), 0)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Put after the lock was freed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Put still waiting after the lock was freed")
	}
}

// badFile writes a file that is not a usable drover state file.
type badFile struct {
	name  string
	make  func(t *testing.T, path string)
	wants []string // in the error message, besides the path
}

func writeFile(data []byte) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// boltFile makes a bbolt database and lets fn fill it.
func boltFile(fn func(tx *bolt.Tx) error) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func meta(format, schema string) func(*testing.T, string) {
	return boltFile(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("drover"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("format"), []byte(format)); err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte(schema))
	})
}

// truncated makes a real state file with some data and cuts it to keep
// bytes, to half its size if keep is 0, not at all if keep is negative.
func truncated(keep int64) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		s, err := local.New(local.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			key := strings.Repeat("k", i+1)
			if _, err := s.Put(t.Context(), key, bytes.Repeat([]byte("v"), 2000), 0); err != nil {
				t.Fatal(err)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case keep < 0:
			return
		case keep == 0:
			keep = fi.Size() / 2
		}
		if err := os.Truncate(path, keep); err != nil {
			t.Fatal(err)
		}
	}
}

func badFiles() []badFile {
	random := make([]byte, 64<<10)
	rnd := rand.NewChaCha8([32]byte{1})
	_, _ = rnd.Read(random)
	notState := "is not a drover state file"
	move := "move it away or point --state elsewhere"
	return []badFile{
		{"RandomBytes", writeFile(random), []string{notState, "not a bbolt database", move}},
		{"TextFile", writeFile([]byte("role \"web\" {\n  size = 2\n}\n")), []string{notState, "not a bbolt database", move}},
		{"Empty", writeFile(nil), []string{notState, "empty file", move}},
		{"TruncatedToOnePage", truncated(4096), []string{notState, move}},
		{"TruncatedToHalf", truncated(0), []string{notState, "truncated", move}},
		{"ForeignBolt", boltFile(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("widgets"))
			return err
		}), []string{notState, "no drover meta bucket", move}},
		{"EmptyBolt", boltFile(func(*bolt.Tx) error { return nil }), []string{notState, "no drover meta bucket"}},
		{"WrongFormat", meta("acme-state", "1"), []string{notState, `format "acme-state", want "drover-state"`}},
		{"BadSchema", meta("drover-state", "one"), []string{notState, `bad schema version "one"`}},
		{"NewerSchema", meta("drover-state", "2"), []string{"has schema version 2, newer than the 1 this drover supports"}},
	}
}

// TestRefusesBadFiles checks that New refuses a file that is not drover's,
// explains why, and leaves it exactly as it was.
func TestRefusesBadFiles(t *testing.T) {
	for _, bf := range badFiles() {
		t.Run(bf.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			bf.make(t, path)
			before := readFile(t, path)
			s, err := local.New(local.Config{Path: path})
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			t.Log(err)
			checkMessage(t, err, path, bf.wants)
			if !bytes.Equal(readFile(t, path), before) {
				t.Fatal("the file changed")
			}
		})
	}
}

// TestRefusesBadFilesAfterOpen replaces the file under an open Store: every
// call fails with a clear error and leaves the file alone.
func TestRefusesBadFilesAfterOpen(t *testing.T) {
	for _, bf := range badFiles() {
		t.Run(bf.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := newStore(t, path)
			l, err := s.Acquire(t.Context(), "role/web", "alice", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			bf.make(t, path)
			before := readFile(t, path)
			calls := map[string]func() error{
				"Get":     func() error { _, err := s.Get(t.Context(), "k"); return err },
				"Put":     func() error { _, err := s.Put(t.Context(), "k", []byte("v"), 0); return err },
				"Delete":  func() error { return s.Delete(t.Context(), "k", 0) },
				"List":    func() error { _, err := s.List(t.Context(), ""); return err },
				"Acquire": func() error { _, err := s.Acquire(t.Context(), "role/db", "bob", time.Minute); return err },
				"Renew":   func() error { _, err := s.Renew(t.Context(), l, time.Minute); return err },
				"Release": func() error { return s.Release(t.Context(), l) },
				"Lease":   func() error { _, err := s.Lease(t.Context(), "role/web"); return err },
			}
			for name, call := range calls {
				err := call()
				if err == nil {
					t.Errorf("%s succeeded", name)
					continue
				}
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrLost) {
					t.Errorf("%s = %v, want an error about the file", name, err)
					continue
				}
				checkMessage(t, err, path, bf.wants)
			}
			if !bytes.Equal(readFile(t, path), before) {
				t.Fatal("the file changed")
			}
		})
	}
}

func TestRefusesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := local.New(local.Config{Path: path})
	checkMessage(t, err, path, []string{"is not a drover state file (a directory)"})
}

func checkMessage(t *testing.T, err error, path string, wants []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range append([]string{"store: " + path}, wants...) {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTruncatedAnywhere cuts a state file at every page boundary (and
// off-boundary) and checks that opening it, and writing to it through a
// Store opened before it was cut, fail cleanly: no crash, no change.
func TestTruncatedAnywhere(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.db")
	truncated(-1)(t, ref) // fill, without cutting
	full := readFile(t, ref)
	// bbolt grows files ahead of use; cutting only the unused tail is harmless.
	db, err := bolt.Open(ref, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var used int
	_ = db.View(func(tx *bolt.Tx) error { used = int(tx.Size()); return nil })
	_ = db.Close()
	seen := map[string]bool{} // kinds of error, for the log
	digits := regexp.MustCompile("[0-9]+")
	for cut := 4096; cut < used; cut += 4096 {
		for _, n := range []int{cut, min(cut+1000, used-1)} {
			path := filepath.Join(dir, "state.db")
			_ = os.Remove(path)
			s := newStore(t, path)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, full[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := local.New(local.Config{Path: path}); err == nil {
				t.Errorf("New on a file cut to %d of %d bytes succeeded", n, len(full))
			} else {
				seen[digits.ReplaceAllString(strings.TrimPrefix(err.Error(), "store: "+path), "N")] = true
			}
			if _, err := s.Put(t.Context(), "new", []byte("v"), 0); err == nil {
				t.Errorf("Put on a file cut to %d of %d bytes succeeded", n, len(full))
			} else {
				seen[digits.ReplaceAllString(strings.TrimPrefix(err.Error(), "store: "+path), "N")] = true
			}
			if !bytes.Equal(readFile(t, path), full[:n]) {
				t.Fatalf("the file cut to %d bytes changed", n)
			}
		}
	}
	for msg := range seen {
		t.Log(msg)
	}
}

// TestCorruptPages garbles one page of a state file at a time: whatever
// bbolt makes of it, the Store must not crash, and a refused file must be
// left as it was.
func TestCorruptPages(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.db")
	truncated(-1)(t, ref)
	full := readFile(t, ref)
	rnd := rand.NewChaCha8([32]byte{2})
	refused := 0
	for off := 0; off+4096 <= len(full); off += 4096 {
		bad := bytes.Clone(full)
		_, _ = rnd.Read(bad[off : off+4096])
		path := filepath.Join(dir, fmt.Sprintf("page%d.db", off/4096))
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := local.New(local.Config{Path: path})
		if err != nil {
			refused++
			checkMessage(t, err, path, nil)
			if !bytes.Equal(readFile(t, path), bad) {
				t.Fatalf("refused file with page %d garbled changed", off/4096)
			}
			continue
		}
		_, _ = s.List(t.Context(), "")
		_, _ = s.Get(t.Context(), "kkk")
		_ = s.Close()
	}
	t.Logf("%d of %d garbled files refused by New", refused, len(full)/4096)
}
