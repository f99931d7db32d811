package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/drover-dev/drover/plugins/store/local"
)

// TestBusyNamesHolder: a call that gives up waiting for the lock says who holds it, from the
// holder file a writer leaves beside the state file, and wraps ErrBusy (not a damage error).
func TestBusyNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := newStore(t, path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// What a drover holding the lock records (this test process plays it).
	rec := fmt.Sprintf("%d 2026-12-04T09:00:00Z\ndrover rollout start web\n", os.Getpid())
	if err := os.WriteFile(path+".holder", []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Get(ctx, "k")
	if !errors.Is(err, local.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get while locked = %v, want ErrBusy and DeadlineExceeded", err)
	}
	want := fmt.Sprintf("pid %d (drover rollout start web), holding it since 2026-12-04T09:00:00Z", os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder %q", err, want)
	}
}

// TestWriterLeavesNoHolderFile: the holder file exists only while a write holds the lock.
func TestWriterLeavesNoHolderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := newStore(t, path)
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".holder"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("holder file after the write: %v", err)
	}
}

// TestStateFileFIFORefused: a FIFO at the state path is refused at once (opening it for reading
// would block until a writer comes).
func TestStateFileFIFORefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		s, err := local.New(local.Config{Path: path})
		if err == nil {
			_ = s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("New on a FIFO = %v, want a refusal naming it", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("New on a FIFO hangs")
	}
}
