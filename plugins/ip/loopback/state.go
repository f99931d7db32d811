package loopback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	lockfile "github.com/drover-dev/drover/internal/flock"
)

// state is the file kept per address: who was last made its holder. It is
// a hint for Holder, which checks it against the monitors.
type state struct {
	Address  netip.Addr `json:"address"`
	Instance string     `json:"instance"`
	Ports    []int      `json:"ports"`
	Updated  time.Time  `json:"updated"`
}

func (p *Provider) statePath(addr netip.Addr) string {
	return filepath.Join(p.dir, "lab", "ip", addr.String()+".json")
}

// lockPath is the one lock of all addresses: an Assign holds the monitors
// of two instances at once, and qemu serves one monitor client at a time,
// so two Assigns moving addresses in opposite directions could otherwise
// wait for each other.
func (p *Provider) lockPath() string {
	return filepath.Join(p.dir, "lab", "ip", "lock")
}

// readState returns the zero state when addr was never assigned.
func (p *Provider) readState(addr netip.Addr) (state, error) {
	b, err := os.ReadFile(p.statePath(addr))
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("loopback: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("loopback: state of %s: %w", addr, err)
	}
	return st, nil
}

// writeState replaces the file atomically.
func (p *Provider) writeState(addr netip.Addr, st state) error {
	st.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("loopback: state of %s: %w", addr, err)
	}
	path := p.statePath(addr)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	return nil
}

// flock takes an exclusive flock on path, polling so that ctx can end the
// wait, and returns the function that releases it. Separate calls exclude
// each other within a process as well as across processes.
func flock(ctx context.Context, path string) (func(), error) {
	unlock, err := lockfile.Lock(ctx, path, 5*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("loopback: %w", err)
	}
	return unlock, nil
}
