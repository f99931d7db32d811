package qemu

import (
	"bufio"
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

	"github.com/drover-dev/drover/plugins/compute"
)

// monitorTimeout bounds one monitor command when ctx has no deadline.
const monitorTimeout = 10 * time.Second

// Monitor is a QMP connection to one running instance. qemu serves one QMP
// client at a time, so keep a Monitor only as long as needed; a second
// Monitor of the same instance waits until the first is closed. A Monitor
// is not safe for concurrent use.
type Monitor struct {
	id   string
	conn net.Conn
	r    *bufio.Reader
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
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("qemu: monitor of %s: %w", id, err)
	}
	m := &Monitor{id: id, conn: conn, r: bufio.NewReader(conn)}
	if err := m.handshake(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

// dialUnix connects to a unix socket even when its path is longer than a
// sockaddr allows (108 bytes), by going through /proc/self/fd of its
// directory.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	if len(path) < 100 {
		return d.DialContext(ctx, "unix", path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(int(dir.Fd()))+"/"+filepath.Base(path))
}

// Close closes the connection.
func (m *Monitor) Close() error { return m.conn.Close() }

func (m *Monitor) handshake(ctx context.Context) error {
	defer m.deadline(ctx)()
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	line, err := m.r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &greeting)
	}
	if err != nil || greeting.QMP == nil {
		return fmt.Errorf("qemu: monitor of %s: no QMP greeting (%q): %w", m.id, line, m.ctxErr(ctx, err))
	}
	_, err = m.exec(ctx, "qmp_capabilities", nil)
	return err
}

// deadline applies ctx's deadline (or monitorTimeout) to the connection and
// makes a canceled ctx interrupt a blocked read; call the result when done.
func (m *Monitor) deadline(ctx context.Context) func() {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(monitorTimeout)
	}
	m.conn.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { m.conn.SetDeadline(time.Now()) })
	return func() { stop() }
}

func (m *Monitor) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// exec runs one QMP command and returns its "return" value. Events that
// arrive meanwhile are skipped.
func (m *Monitor) exec(ctx context.Context, command string, args any) (json.RawMessage, error) {
	// An ended ctx sends nothing: context.AfterFunc would interrupt the exchange only from another
	// goroutine, which a quick answer can beat.
	if ctx.Err() != nil {
		return nil, fmt.Errorf("qemu: monitor of %s: %s: %w", m.id, command, context.Cause(ctx))
	}
	defer m.deadline(ctx)()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := m.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qemu: monitor of %s: %s: %w", m.id, command, m.ctxErr(ctx, err))
	}
	for {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qemu: monitor of %s: %s: %w", m.id, command, m.ctxErr(ctx, err))
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qemu: monitor of %s: %s: reply %q: %w", m.id, command, line, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("qemu: monitor of %s: %s: %s: %s", m.id, command, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// HMP runs a human monitor command (such as "info usernet") through QMP and
// returns its output.
func (m *Monitor) HMP(ctx context.Context, command string) (string, error) {
	raw, err := m.exec(ctx, "human-monitor-command", map[string]string{"command-line": command})
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("qemu: monitor of %s: %q: reply %s: %w", m.id, command, raw, err)
	}
	return out, nil
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
