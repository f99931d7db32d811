package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-dev/drover/internal/abslot"
	"github.com/drover-dev/drover/plugins/compute"
)

var _ compute.Slots = (*Provider)(nil)

// Options are what a command adds to a Config.
type Options struct {
	// Confirm is asked at first contact with a host whose fingerprint the block does not give;
	// true pins it. nil refuses every first contact (the error prints the fingerprint).
	Confirm func(addr, fingerprint string) bool
	// DialTimeout bounds a connection; zero means 15 s.
	DialTimeout time.Duration
	// FleetDir is what a relative key_file is relative to.
	FleetDir string
}

// Provider reaches devices over SSH. Safe for concurrent use; it keeps no connection open between
// calls, so a device that reboots is simply dialled again.
type Provider struct {
	c      Config
	signer ssh.Signer
	pins   *pins
	opts   Options
}

// New opens the devices of c; stateDir/device/NAME/host_keys.json holds the pinned host keys.
func New(c *Config, stateDir, name string, opts Options) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	key := c.Key
	if len(key) == 0 && c.KeyFile != "" {
		path := c.KeyFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(opts.FleetDir, path)
		}
		var err error
		if key, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("device: key_file: %w", err)
		}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("device: no SSH private key: set DEVICE_SSH_KEY or DEVICE_SSH_KEY_FILE, or key_file in the block")
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("device: the SSH private key: %w (an unencrypted OpenSSH or PEM key is accepted)", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 15 * time.Second
	}
	return &Provider{c: *c, signer: signer, opts: opts,
		pins: &pins{path: filepath.Join(stateDir, "device", name, "host_keys.json")}}, nil
}

// addr is host's address as dialled and pinned, "host:port".
func (p *Provider) addr(host string) (string, error) {
	for _, h := range p.c.Hosts {
		if h == host {
			name, port, err := splitHost(h)
			if err != nil {
				return "", err
			}
			return net.JoinHostPort(name, strconv.Itoa(port)), nil
		}
	}
	return "", fmt.Errorf("device: host %q is not in the block's hosts (%s)", host, strings.Join(p.c.Hosts, ", "))
}

// dial connects to host; the connection is closed when ctx is done.
func (p *Provider) dial(ctx context.Context, host string) (*ssh.Client, func(), error) {
	addr, err := p.addr(host)
	if err != nil {
		return nil, nil, err
	}
	fleetFP := p.c.HostKeys[host]
	if fleetFP == "" {
		fleetFP = p.c.HostKeys[addr]
	}
	cfg := &ssh.ClientConfig{User: p.c.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(p.signer)},
		HostKeyCallback: p.pins.callback(addr, fleetFP, p.opts.Confirm), Timeout: p.opts.DialTimeout}
	d := net.Dialer{Timeout: p.opts.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("device: %s: %w", addr, err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		if errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrUnknownHostKey) {
			return nil, nil, unwrapHandshake(err)
		}
		return nil, nil, fmt.Errorf("device: %s: %w", addr, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	stop := context.AfterFunc(ctx, func() { client.Close() })
	return client, func() { stop(); client.Close() }, nil
}

// unwrapHandshake drops the ssh package's "ssh: handshake failed: " prefix from a host key refusal,
// which is ours and already says everything.
func unwrapHandshake(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), "device: ") {
			return e
		}
	}
	return err
}

// run runs drover-boot with args on host and returns its stdout.
func (p *Provider) run(ctx context.Context, host string, args ...string) ([]byte, error) {
	client, closeFn, err := p.dial(ctx, host)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("device: %s: %w", host, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if err := s.Run(p.command(args...)); err != nil {
		return nil, p.remoteErr(ctx, host, args, err, errb.String())
	}
	return out.Bytes(), nil
}

func (p *Provider) command(args ...string) string {
	return p.c.DroverBoot + " slot " + strings.Join(args, " ")
}

func (p *Provider) remoteErr(ctx context.Context, host string, args []string, err error, stderr string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("device: %s: slot %s: %w", host, args[0], ctx.Err())
	}
	if msg := strings.TrimSpace(stderr); msg != "" {
		return fmt.Errorf("device: %s: %s", host, msg)
	}
	return fmt.Errorf("device: %s: drover-boot slot %s: %w", host, args[0], err)
}

// Status is drover-boot slot status of host, in full.
func (p *Provider) Status(ctx context.Context, host string) (abslot.Status, error) {
	out, err := p.run(ctx, host, "status")
	if err != nil {
		return abslot.Status{}, err
	}
	var st abslot.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return abslot.Status{}, fmt.Errorf("device: %s: slot status: %w", host, err)
	}
	return st, nil
}

// SlotStatus implements compute.Slots.
func (p *Provider) SlotStatus(ctx context.Context, host string) (compute.SlotStatus, error) {
	st, err := p.Status(ctx, host)
	if err != nil {
		return compute.SlotStatus{}, err
	}
	return compute.SlotStatus{Committed: st.Committed, Booted: st.Booted, Trial: st.Trial, BootID: st.BootID}, nil
}

// WriteSlot implements compute.Slots over one SSH session running drover-boot slot write.
func (p *Provider) WriteSlot(ctx context.Context, host, slot, bundleDir string) (compute.SlotWrite, error) {
	if _, err := abslot.SlotNamed(slot); err != nil {
		return compute.SlotWrite{}, fmt.Errorf("device: %w", err)
	}
	if _, err := os.Stat(filepath.Join(bundleDir, abslot.ManifestName)); err != nil {
		return compute.SlotWrite{}, fmt.Errorf("device: the update bundle: %w", err)
	}
	client, closeFn, err := p.dial(ctx, host)
	if err != nil {
		return compute.SlotWrite{}, err
	}
	defer closeFn()
	s, err := client.NewSession()
	if err != nil {
		return compute.SlotWrite{}, fmt.Errorf("device: %s: %w", host, err)
	}
	defer s.Close()
	in, err := s.StdinPipe()
	if err != nil {
		return compute.SlotWrite{}, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		return compute.SlotWrite{}, err
	}
	var errb bytes.Buffer
	s.Stderr = &errb
	if err := s.Start(p.command("write", slot)); err != nil {
		return compute.SlotWrite{}, fmt.Errorf("device: %s: %w", host, err)
	}
	st, sendErr := abslot.Send(bundleDir, slot, in, out)
	in.Close()
	waitErr := s.Wait()
	if waitErr != nil {
		return compute.SlotWrite{}, p.remoteErr(ctx, host, []string{"write"}, waitErr, errb.String())
	}
	if sendErr != nil {
		return compute.SlotWrite{}, fmt.Errorf("device: %s: %w", host, sendErr)
	}
	return compute.SlotWrite{Sent: st.Bytes, SlotBytes: st.SlotBytes, Blocks: st.Blocks, Elapsed: st.Elapsed,
		Verify: time.Duration(st.Result.VerifySeconds * float64(time.Second))}, nil
}

// ArmTrial implements compute.Slots.
func (p *Provider) ArmTrial(ctx context.Context, host, slot string) error {
	_, err := p.run(ctx, host, "trial", slot)
	return err
}

// CommitSlot implements compute.Slots.
func (p *Provider) CommitSlot(ctx context.Context, host, slot string) error {
	_, err := p.run(ctx, host, "commit", slot)
	return err
}

// Reboot implements compute.Slots. The connection may drop as the device goes down, which is not
// an error once the command was sent.
func (p *Provider) Reboot(ctx context.Context, host string) error {
	_, err := p.run(ctx, host, "reboot")
	var exitMissing *ssh.ExitMissingError
	if errors.As(err, &exitMissing) {
		return nil
	}
	return err
}

// Launch implements compute.Provider: a device is not launched. Its slots are written (Slots).
func (p *Provider) Launch(_ context.Context, spec compute.Spec) (compute.Instance, error) {
	return compute.Instance{}, fmt.Errorf("device: %q: a device is not launched, it exists already; its slots are written with strategy \"ab\"", spec.Name)
}

// Terminate implements compute.Provider: a device's slot cannot be destroyed.
func (p *Provider) Terminate(_ context.Context, id string) error {
	return fmt.Errorf("device: %q is a slot of a device: it is overwritten by the next update, never destroyed", id)
}

// Instances implements compute.Provider: each host's two slots (ID "HOST/a" and "HOST/b"),
// labelled host, slot, committed and running; the slot that runs is Running, the other Stopped.
// A host that does not answer fails the call.
func (p *Provider) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	var out []compute.Instance
	for _, h := range p.c.Hosts {
		st, err := p.Status(ctx, h)
		if err != nil {
			return nil, err
		}
		name, _, _ := splitHost(h)
		addr, _ := netip.ParseAddr(name)
		for _, s := range st.Slots {
			labels := map[string]string{"host": h, "slot": s.Name,
				"committed": strconv.FormatBool(s.Name == st.Committed), "running": strconv.FormatBool(s.Name == st.Booted)}
			if !sel.Matches(labels) {
				continue
			}
			state := compute.Stopped
			if s.Name == st.Booted {
				state = compute.Running
			}
			out = append(out, compute.Instance{ID: h + "/" + s.Name, Name: h + " slot " + s.Name, Labels: labels, State: state, Address: addr})
		}
	}
	return out, nil
}
