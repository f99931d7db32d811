package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/drover-dev/drover/internal/hostcheck"
	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.Provider = (*Provider)(nil)
	_ compute.Stopper  = (*Provider)(nil)
	_ compute.Volumes  = (*Provider)(nil)
)

// maxAddressTries bounds how often Launch moves to another address when
// qemu cannot bind its forwards (another program took the address between
// the check and the start).
const maxAddressTries = 5

// Provider runs instances as qemu-system-x86_64 VMs on this machine.
//
// Each VM boots from a per-instance qcow2 overlay of the image, gets its own
// loopback address from Config.Network with a host forward per port on a
// user-mode network (netdev "n0"; the guest gets 10.0.2.15 by DHCP), reads
// its user-data from fw_cfg (opt/drover/user-data), writes its serial
// console to a file and listens for QMP on a unix socket.
//
// VMs run detached, so they outlive the process that launched them; what a
// Provider knows lives in records under its state directory, so a new
// Provider value (a new drover process) finds every instance again. Methods
// are safe for concurrent use within and across processes: changes take a
// lock file, and readers see records replaced atomically.
type Provider struct {
	cfg     Config
	dir     string
	network netip.Prefix

	mu    sync.Mutex
	accel string // chosen by probe when cfg.Accel is "auto"
}

// New returns a provider keeping its records under stateDir/lab. It checks
// cfg but not the host: a missing qemu is reported by Launch, so listing
// and terminating work without it.
func New(cfg *Config, stateDir string) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("qemu: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if stateDir == "" {
		return nil, errors.New("qemu: empty state directory")
	}
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("qemu: state directory %q: %w", stateDir, err)
	}
	return &Provider{cfg: *cfg, dir: dir, network: netip.MustParsePrefix(cfg.Network)}, nil
}

// Launch implements compute.Provider. The instance's ID is derived from the
// token, and the lab lock is held throughout, so a second Launch of the
// token, from any process, finds the first one's record. A record left by a
// launch that died before qemu ran is repaired: its VM is started.
func (p *Provider) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	if err := spec.Validate(); err != nil {
		return compute.Instance{}, err
	}
	if err := spec.RefuseCloudRole("qemu"); err != nil {
		return compute.Instance{}, err
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return compute.Instance{}, err
	}
	defer unlock()
	p.pruneTombstones(time.Now())

	id := instanceID(spec.Token)
	dir := p.instanceDir(id)
	r, err := readRecord(filepath.Join(dir, recordFile))
	switch {
	case err == nil && (r.PID != 0 || r.Stopped):
		return p.instance(r), nil
	case err == nil:
		return p.launch(ctx, r)
	case !errors.Is(err, fs.ErrNotExist):
		return compute.Instance{}, err
	}
	if t, err := readRecord(p.tombstone(id)); err == nil {
		return p.instance(t), nil
	}

	if spec.Image.Path == "" {
		return compute.Instance{}, fmt.Errorf("qemu: spec %q: no image path", spec.Name)
	}
	img, err := filepath.Abs(spec.Image.Path)
	if err != nil {
		return compute.Instance{}, fmt.Errorf("qemu: spec %q: image path %q: %w", spec.Name, spec.Image.Path, err)
	}
	format, err := imageFormat(img)
	if err != nil {
		return compute.Instance{}, err
	}
	spec = spec.Clone()
	r = &record{
		ID:      id,
		Name:    spec.Name,
		Token:   spec.Token,
		Labels:  spec.Labels,
		Ports:   spec.Ports,
		Image:   imageRef{Identity: spec.Image.Identity, Path: img, Format: format},
		Created: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return compute.Instance{}, fmt.Errorf("qemu: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, userFile), spec.UserData, 0o600); err != nil {
		return compute.Instance{}, p.abandon(r, fmt.Errorf("qemu: %w", err))
	}
	return p.launch(ctx, r)
}

// launch allocates r's address if it has none, writes r and starts its VM;
// r has never run, so when qemu finds its address taken it may move to
// another. On failure it removes what it made, unless the record was there
// before (a repair), which it leaves for the next try.
func (p *Provider) launch(ctx context.Context, r *record) (compute.Instance, error) {
	fresh := !r.Address.IsValid()
	accel, err := p.chooseAccel(ctx)
	if err != nil {
		return compute.Instance{}, p.abandonIf(fresh, r, err)
	}
	dir := p.instanceDir(r.ID)
	if err := createOverlay(ctx, dir, r.Image); err != nil {
		return compute.Instance{}, p.abandonIf(fresh, r, err)
	}
	busy := map[netip.Addr]bool{}
	for try := 1; ; try++ {
		if !r.Address.IsValid() {
			if r.Address, err = p.allocate(r.Ports, busy); err != nil {
				return compute.Instance{}, p.abandonIf(fresh, r, err)
			}
			r.Segment = p.segmentOf(r.Address)
		}
		r.PID = 0
		if err := writeRecord(filepath.Join(dir, recordFile), r); err != nil {
			return compute.Instance{}, p.abandonIf(fresh, r, err)
		}
		r.PID, err = p.start(ctx, r, accel)
		if err == nil {
			break
		}
		if !errors.Is(err, errForward) || try == maxAddressTries {
			return compute.Instance{}, p.abandonIf(fresh, r, err)
		}
		busy[r.Address] = true
		r.Address = netip.Addr{}
	}
	if err := writeRecord(filepath.Join(dir, recordFile), r); err != nil {
		kill(r.PID, dir)
		return compute.Instance{}, p.abandonIf(fresh, r, err)
	}
	return p.instance(r), nil
}

// abandon removes a launch that failed, so it leaves nothing behind.
func (p *Provider) abandon(r *record, err error) error {
	dir := p.instanceDir(r.ID)
	if pid, perr := readPID(filepath.Join(dir, pidFile)); perr == nil {
		kill(pid, dir)
	}
	os.RemoveAll(dir)
	return err
}

func (p *Provider) abandonIf(fresh bool, r *record, err error) error {
	if fresh {
		return p.abandon(r, err)
	}
	return err
}

// chooseAccel returns the accelerator to start VMs with. For "auto" it boots
// a probe guest under KVM once per Provider: a /dev/kvm that exists has
// been seen to hang guests on nested hosts.
func (p *Provider) chooseAccel(ctx context.Context) (string, error) {
	if p.cfg.Accel != "auto" {
		return p.cfg.Accel, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.accel != "" {
		return p.accel, nil
	}
	accel := "tcg"
	if _, err := os.Stat("/dev/kvm"); err == nil {
		if err := hostcheck.ProbeAccel(ctx, "kvm", 0); err == nil {
			accel = "kvm"
		}
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("qemu: choosing an accelerator: %w", context.Cause(ctx))
	}
	p.accel = accel
	return accel, nil
}

// Instances implements compute.Provider. It reads the records without the
// lab lock and asks the process table about each VM: one whose process is
// gone is reported Terminated until Terminate removes its files.
func (p *Provider) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qemu: %w", context.Cause(ctx))
	}
	recs, err := p.records()
	if err != nil {
		return nil, err
	}
	var out []compute.Instance
	for _, r := range recs {
		if sel.Matches(r.Labels) {
			out = append(out, p.instance(r))
		}
	}
	return out, nil
}

// Instance returns one instance by ID, or an error wrapping
// compute.ErrNotFound.
func (p *Provider) Instance(ctx context.Context, id string) (compute.Instance, error) {
	if err := ctx.Err(); err != nil {
		return compute.Instance{}, fmt.Errorf("qemu: %w", context.Cause(ctx))
	}
	r, err := p.record(id)
	if err != nil {
		return compute.Instance{}, err
	}
	return p.instance(r), nil
}

// record reads the record of id, or returns an error wrapping
// compute.ErrNotFound.
func (p *Provider) record(id string) (*record, error) {
	if !validID(id) {
		return nil, fmt.Errorf("qemu: instance %q: %w", id, compute.ErrNotFound)
	}
	r, err := readRecord(filepath.Join(p.instanceDir(id), recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("qemu: instance %q: %w", id, compute.ErrNotFound)
	}
	return r, err
}

// Terminate implements compute.Provider: it kills the VM by its PID
// (SIGTERM, then SIGKILL), keeps a tombstone of the record so the token is
// not reused, and removes the instance's directory with its overlay. Its
// volumes are detached in their records (the VM that had them is gone). A
// failure part way leaves the record, so a retry finishes the job.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	unlock, err := p.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := p.record(id)
	if errors.Is(err, compute.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	dir := p.instanceDir(id)
	pid := r.PID
	if pid == 0 {
		pid, _ = readPID(filepath.Join(dir, pidFile))
	}
	if err := kill(pid, dir); err != nil {
		return fmt.Errorf("qemu: terminating %s: %w", id, err)
	}
	if err := p.releaseVolumes(id); err != nil {
		return fmt.Errorf("qemu: terminating %s: %w", id, err)
	}
	r.Terminated = time.Now().UTC()
	r.PID = 0
	if err := writeRecord(p.tombstone(id), r); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("qemu: terminating %s: %w", id, err)
	}
	return nil
}

// MonitorPath is the QMP socket of instance id. Talk to it with Monitor.
func (p *Provider) MonitorPath(id string) string {
	return filepath.Join(p.instanceDir(id), monitorFile)
}
