package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/internal/qmp"
	"github.com/drover-dev/drover/plugins/compute"
)

// Monitor is a QMP connection to one running instance. qemu serves one QMP
// client at a time, so keep a Monitor only as long as needed; a second
// Monitor of the same instance waits until the first is closed. A Monitor
// is not safe for concurrent use.
type Monitor struct {
	id string
	c  *qmp.Conn
}

// Monitor connects to the QMP socket of instance id. It fails, wrapping
// compute.ErrNotFound, when the instance does not exist.
func (p *Provider) Monitor(ctx context.Context, id string) (*Monitor, error) {
	if _, err := p.record(id); err != nil {
		return nil, err
	}
	return DialMonitor(ctx, id, p.MonitorPath(id))
}

// DialMonitor connects to the QMP socket at path and negotiates
// capabilities; id names the instance in errors.
func DialMonitor(ctx context.Context, id, path string) (*Monitor, error) {
	c, err := qmp.Dial(ctx, "qemu", id, path)
	if err != nil {
		return nil, err
	}
	return &Monitor{id: id, c: c}, nil
}

// Close closes the connection.
func (m *Monitor) Close() error { return m.c.Close() }

// exec runs one QMP command and returns its "return" value.
func (m *Monitor) exec(ctx context.Context, command string, args any) (json.RawMessage, error) {
	return m.c.Exec(ctx, command, args)
}

// HMP runs a human monitor command (such as "info usernet") through QMP and
// returns its output.
func (m *Monitor) HMP(ctx context.Context, command string) (string, error) {
	return m.c.HMP(ctx, command)
}

// Forward is a TCP host forward of an instance's user-mode network:
// connections to Host reach the guest's GuestPort.
type Forward = compute.Forward

// Forwards lists the instance's TCP host forwards ("info usernet").
func (m *Monitor) Forwards(ctx context.Context) ([]Forward, error) {
	out, err := m.HMP(ctx, "info usernet")
	if err != nil {
		return nil, err
	}
	return parseUsernet(out)
}

// parseUsernet reads the HOST_FORWARD lines of "info usernet":
//
//	Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
//	TCP[HOST_FORWARD]  11      127.0.10.2    80       10.0.2.15    80     0     0
func parseUsernet(out string) ([]Forward, error) {
	var fs []Forward
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "TCP[HOST_FORWARD]" {
			continue
		}
		addr, err1 := netip.ParseAddr(f[2])
		port, err2 := strconv.ParseUint(f[3], 10, 16)
		guest, err3 := strconv.Atoi(f[5])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("qemu: info usernet line %q: %w", strings.TrimSpace(line), err)
		}
		fs = append(fs, Forward{Host: netip.AddrPortFrom(addr, uint16(port)), GuestPort: guest})
	}
	return fs, nil
}

// AddForward adds a host forward. It fails when the host address and port
// cannot be bound, for instance while another instance still forwards them.
func (m *Monitor) AddForward(ctx context.Context, f Forward) error {
	out, err := m.HMP(ctx, "hostfwd_add n0 "+f.String())
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); out != "" {
		return fmt.Errorf("qemu: %s: adding forward %s: %s", m.id, f, out)
	}
	return nil
}

// RemoveForward removes the forward of host; one that does not exist is
// not an error.
func (m *Monitor) RemoveForward(ctx context.Context, host netip.AddrPort) error {
	out, err := m.HMP(ctx, "hostfwd_remove n0 tcp:"+host.String())
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); strings.HasSuffix(out, " removed") || strings.HasSuffix(out, " not found") {
		return nil
	}
	return fmt.Errorf("qemu: %s: removing forward of %s: %s", m.id, host, out)
}
