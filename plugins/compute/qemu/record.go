package qemu

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// The state directory's layout, under stateDir/lab:
//
//	lock                     flock held by Launch, Terminate, Stop and Start
//	instances/<id>/          one directory per instance:
//	    record.json          the record below
//	    overlay.qcow2        the instance's disk, backed by the image
//	    console.log          the serial console
//	    qmp.sock             the QMP monitor
//	    user-data            what the guest reads through fw_cfg
//	    qemu.pid             written by qemu itself
//	    launch.log           qemu's messages while it starts
//	terminated/<id>.json     records of terminated instances, kept for
//	                         compute.TokenMemory so their tokens are not reused
const (
	recordFile  = "record.json"
	overlayFile = "overlay.qcow2"
	consoleFile = "console.log"
	monitorFile = "qmp.sock"
	userFile    = "user-data"
	pidFile     = "qemu.pid"
	launchLog   = "launch.log"
)

// tombstoneTTL is how long terminated records are kept: longer than
// compute.TokenMemory, so a token is remembered at least that long.
const tombstoneTTL = 7 * 24 * time.Hour

// record is what the provider knows about an instance beyond what the
// process table says. It is written before qemu starts, so a launch that
// died half way is found again by its token.
type record struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Token   string            `json:"token"`
	Labels  map[string]string `json:"labels"`
	PID     int               `json:"pid"` // 0 until qemu runs, and while stopped
	Address netip.Addr        `json:"address"`
	// Segment is the VM's address on the lab's segment, with its prefix length; zero without one.
	Segment netip.Prefix `json:"segment,omitzero"`
	Ports   []int        `json:"ports"`
	Image   imageRef     `json:"image"`
	Created time.Time    `json:"created"`
	// Stopped is set by Stop: the instance is off on purpose.
	Stopped bool `json:"stopped,omitempty"`
	// Terminated is set in tombstones.
	Terminated time.Time `json:"terminated,omitzero"`
}

type imageRef struct {
	Identity string `json:"identity"`
	Path     string `json:"path"`
	Format   string `json:"format"` // raw or qcow2
}

// instanceID derives the ID from the token, so every process finds the
// instance of a token by name, without an index to keep in step.
func instanceID(token string) string {
	h := sha256.Sum256([]byte("drover qemu instance\x00" + token))
	return "vm-" + hex.EncodeToString(h[:6])
}

// validID guards paths built from IDs that callers pass in.
func validID(id string) bool {
	return strings.HasPrefix(id, "vm-") && len(id) == 15 && !strings.ContainsAny(id, "/.")
}

func (p *Provider) labDir() string               { return filepath.Join(p.dir, "lab") }
func (p *Provider) instancesDir() string         { return filepath.Join(p.labDir(), "instances") }
func (p *Provider) instanceDir(id string) string { return filepath.Join(p.instancesDir(), id) }
func (p *Provider) tombstone(id string) string {
	return filepath.Join(p.labDir(), "terminated", id+".json")
}

// readRecord reads a record; a missing file is an error wrapping
// fs.ErrNotExist.
func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("qemu: record %s: %w", path, err)
	}
	return &r, nil
}

// writeRecord replaces path atomically, so readers without the lock
// (Instances) never see half a record.
func writeRecord(path string, r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("qemu: record %s: %w", r.ID, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// records reads every instance record. Directories without a record (a
// launch that has just begun, or a Terminate that is removing it) are
// skipped.
func (p *Provider) records() ([]*record, error) {
	ents, err := os.ReadDir(p.instancesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	var out []*record
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		r, err := readRecord(filepath.Join(p.instancesDir(), e.Name(), recordFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// pruneTombstones forgets tokens of instances terminated long ago.
func (p *Provider) pruneTombstones(now time.Time) {
	dir := filepath.Dir(p.tombstone("x"))
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > tombstoneTTL {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// instance turns a record into what callers see, asking the process table
// whether the VM still runs.
func (p *Provider) instance(r *record) compute.Instance {
	dir := p.instanceDir(r.ID)
	in := compute.Instance{
		ID:      r.ID,
		Name:    r.Name,
		Labels:  r.Labels,
		Address: r.Address,
		Ports:   r.Ports,
		Created: r.Created,
		Console: filepath.Join(dir, consoleFile),
		Private: r.Segment.Addr(),
	}
	if in.Labels == nil {
		in.Labels = map[string]string{}
	}
	switch {
	case !r.Terminated.IsZero():
		in.State = compute.Terminated
	case r.Stopped:
		in.State = compute.Stopped
	case r.PID == 0:
		in.State = compute.Pending
	case running(r.PID, dir):
		in.State = compute.Running
	default:
		in.State = compute.Terminated
	}
	return in
}
