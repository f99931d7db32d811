// Package qmp speaks QEMU's machine protocol (QMP) over a VM's unix socket: the lab's qemu
// provider and the cloud lab's machines both hot-plug disks and read what a VM holds through it.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Timeout bounds one command when ctx has no deadline.
const Timeout = 10 * time.Second

// Conn is a QMP connection to one running VM. qemu serves one QMP client at a time, so keep a
// Conn only as long as needed; a second one to the same VM waits until the first is closed. A
// Conn is not safe for concurrent use.
type Conn struct {
	component, name string // for errors: "<component>: monitor of <name>: ..."
	conn            net.Conn
	r               *bufio.Reader
}

// Dial connects to the QMP socket at path and negotiates capabilities. Errors, this one's and the
// Conn's, read "<component>: monitor of <name>: ...".
func Dial(ctx context.Context, component, name, path string) (*Conn, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s: monitor of %s: %w", component, name, err)
	}
	c := &Conn{component: component, name: name, conn: conn, r: bufio.NewReader(conn)}
	if err := c.handshake(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// dialUnix connects to a unix socket even when its path is longer than a sockaddr allows (108
// bytes), by going through /proc/self/fd of its directory.
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

// SocketArg is the path to give qemu's -qmp for a socket at path when qemu runs in dir: path
// itself, or its base name when path is too long for a sockaddr (qemu then binds it relative to
// its working directory, which must be dir).
func SocketArg(path string) string {
	if len(path) >= 100 {
		return filepath.Base(path)
	}
	return path
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

func (c *Conn) handshake(ctx context.Context) error {
	defer c.deadline(ctx)()
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	line, err := c.r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &greeting)
	}
	if err != nil || greeting.QMP == nil {
		return fmt.Errorf("%s: monitor of %s: no QMP greeting (%q): %w", c.component, c.name, line, c.ctxErr(ctx, err))
	}
	_, err = c.Exec(ctx, "qmp_capabilities", nil)
	return err
}

// deadline applies ctx's deadline (or Timeout) to the connection and makes a canceled ctx
// interrupt a blocked read; call the result when done.
func (c *Conn) deadline(ctx context.Context) func() {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(Timeout)
	}
	c.conn.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })
	return func() { stop() }
}

func (c *Conn) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// Exec runs one QMP command and returns its "return" value. Events that arrive meanwhile are
// skipped. A command qemu refuses is an error naming qemu's class and description.
func (c *Conn) Exec(ctx context.Context, command string, args any) (json.RawMessage, error) {
	// An ended ctx sends nothing: context.AfterFunc would interrupt the exchange only from another
	// goroutine, which a quick answer can beat.
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: monitor of %s: %s: %w", c.component, c.name, command, context.Cause(ctx))
	}
	defer c.deadline(ctx)()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%s: monitor of %s: %s: %w", c.component, c.name, command, c.ctxErr(ctx, err))
	}
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("%s: monitor of %s: %s: %w", c.component, c.name, command, c.ctxErr(ctx, err))
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
			return nil, fmt.Errorf("%s: monitor of %s: %s: reply %q: %w", c.component, c.name, command, line, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("%s: monitor of %s: %s: %s: %s", c.component, c.name, command, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// Event is a message qemu sends unasked: a guest reset (SHUTDOWN with reason "guest-reset" when
// qemu runs with -no-reboot), a watchdog that fired (WATCHDOG), a guest that powered off.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// NextEvent waits for qemu's next event and returns it; replies to commands met meanwhile are
// skipped, so do not mix it with Exec on the same Conn. Unlike Exec it has no default deadline: it
// waits until ctx ends, or until qemu exits, which is an error wrapping io.EOF.
func (c *Conn) NextEvent(ctx context.Context) (Event, error) {
	if ctx.Err() != nil {
		return Event{}, fmt.Errorf("%s: monitor of %s: waiting for an event: %w", c.component, c.name, context.Cause(ctx))
	}
	d, _ := ctx.Deadline() // zero: none
	c.conn.SetDeadline(d)
	defer context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })()
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return Event{}, fmt.Errorf("%s: monitor of %s: waiting for an event: %w", c.component, c.name, c.ctxErr(ctx, err))
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return Event{}, fmt.Errorf("%s: monitor of %s: message %q: %w", c.component, c.name, line, err)
		}
		if ev.Name != "" {
			return ev, nil
		}
	}
}

// HMP runs a human monitor command (such as "info usernet") through QMP and returns its output.
func (c *Conn) HMP(ctx context.Context, command string) (string, error) {
	raw, err := c.Exec(ctx, "human-monitor-command", map[string]string{"command-line": command})
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("%s: monitor of %s: %q: reply %s: %w", c.component, c.name, command, raw, err)
	}
	return out, nil
}

// HasNode reports whether the VM has a block node named node (query-named-block-nodes).
func (c *Conn) HasNode(ctx context.Context, node string) (bool, error) {
	raw, err := c.Exec(ctx, "query-named-block-nodes", map[string]any{"flat": true})
	if err != nil {
		return false, err
	}
	var nodes []struct {
		Node string `json:"node-name"`
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return false, fmt.Errorf("%s: monitor of %s: query-named-block-nodes: %w", c.component, c.name, err)
	}
	for _, n := range nodes {
		if n.Node == node {
			return true, nil
		}
	}
	return false, nil
}

// HasDevice reports whether the VM has a device with id (qom-list of /machine/peripheral): a
// device being unplugged stays there until the guest has released it.
func (c *Conn) HasDevice(ctx context.Context, id string) (bool, error) {
	raw, err := c.Exec(ctx, "qom-list", map[string]string{"path": "/machine/peripheral"})
	if err != nil {
		return false, err
	}
	var props []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &props); err != nil {
		return false, fmt.Errorf("%s: monitor of %s: qom-list: %w", c.component, c.name, err)
	}
	for _, p := range props {
		if p.Name == id {
			return true, nil
		}
	}
	return false, nil
}

// Unplug asks the guest to release device id (device_del) and waits until it has: polling every
// poll whether qemu still has the device, and asking again every repeat, since a guest busy with
// an earlier hot-plug event, or still starting, can let a request pass (as libvirt's users know).
// It returns once the device is gone (at once when there is none), or ctx's cause wrapped: the
// device then stays, and a later Unplug finishes.
func (c *Conn) Unplug(ctx context.Context, id string, poll, repeat time.Duration) error {
	asked := time.Time{}
	for {
		present, err := c.HasDevice(ctx, id)
		if err != nil || !present {
			return err
		}
		if time.Since(asked) >= repeat {
			if _, err := c.Exec(ctx, "device_del", map[string]string{"id": id}); err != nil &&
				!strings.Contains(err.Error(), "DeviceNotFound") && !strings.Contains(err.Error(), "in the process of unplug") {
				return err
			}
			asked = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: monitor of %s: the guest has not released the device %s: %w", c.component, c.name, id, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}
