// Package daemon runs the name servers the dns tests talk to (Knot, NSD) as foreground child
// processes on 127.0.0.1: it finds a free port, starts the server in its own process group, waits
// until it answers for its zone, and stops it by PID.
package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// LookPath finds a server binary in $PATH or in the sbin directories, which a non-root user's PATH
// often lacks. The error names the Debian package that provides it.
func LookPath(bin, pkg string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or the sbin directories: install the Debian package %s (apt-get install %s)", bin, pkg, pkg)
}

// FreePort returns a port on 127.0.0.1 that is free for both TCP and UDP right now. Another program
// may take it before the server binds it; callers retry on "address already in use".
func FreePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("finding a free port: no port free for both TCP and UDP after 20 tries")
}

// Process is a server started by Start. Stop it with Stop, which is safe to call more than once.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error // from Wait, valid once done is closed

	stopOnce sync.Once
}

// Start runs argv in dir with its output collected for Log. The process gets its own process
// group, so Stop can also end any children it forks (NSD does), and SIGKILL when the starting
// thread dies, so a test binary killed by its timeout does not leave it behind.
func Start(name string, argv []string, dir string) (*Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, log: buf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the server's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Log returns everything the server wrote to stdout and stderr so far.
func (p *Process) Log() string { return p.log.String() }

// LogTail returns the last n lines of Log.
func (p *Process) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM to the server's PID, waits up to grace for it to exit, then sends SIGKILL to
// its process group (the PID and whatever it forked). It returns once the PID has been reaped.
func (p *Process) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		pid := p.PID()
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
		// The group may still hold children of an exited leader (NSD's server processes).
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	})
}

// WaitSOA queries addr for the zone's SOA over UDP and TCP until both answer authoritatively, the
// process exits (an error with the end of its log) or ctx is done.
func (p *Process) WaitSOA(ctx context.Context, addr, zone string) error {
	var last error
	for {
		last = querySOA(ctx, addr, zone)
		if last == nil {
			return nil
		}
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited before serving %s (%v): %s", p.name, zone, err, p.LogTail(10))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not serve %s at %s: %v: %w; its log ends: %s", p.name, zone, addr, last, ctx.Err(), p.LogTail(10))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func querySOA(ctx context.Context, addr, zone string) error {
	for _, network := range []string{"udp", "tcp"} {
		m := new(mdns.Msg)
		m.SetQuestion(zone, mdns.TypeSOA)
		m.RecursionDesired = false
		c := &mdns.Client{Net: network, Timeout: 500 * time.Millisecond}
		r, _, err := c.ExchangeContext(ctx, m, addr)
		if err != nil {
			return err
		}
		if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
			return fmt.Errorf("SOA query over %s: rcode %s, aa=%t, %d answers", network, mdns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
		}
	}
	return nil
}

// Serve starts a server for zone on a free port of 127.0.0.1 and returns it with its address
// ("127.0.0.1:PORT") once it answers the zone's SOA over UDP and TCP (within 20 seconds). argv
// writes the server's configuration for port and returns its command line, run in dir; name names
// the server in errors and logs. A port found free can be taken before the server binds it; the
// server then exits, and Serve tries another port, five in all. A server that does not come up is
// stopped, and the error says why.
func Serve(name, dir, zone string, argv func(port int) ([]string, error)) (*Process, string, error) {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args, err := argv(port)
		if err != nil {
			return nil, "", err
		}
		proc, err := Start(name, args, dir)
		if err != nil {
			return nil, "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = proc.WaitSOA(ctx, addr, zone)
		cancel()
		if err == nil {
			return proc, addr, nil
		}
		proc.Stop(5 * time.Second)
		if attempt < 5 && AddrInUse(proc.Log()) {
			continue
		}
		return nil, "", err
	}
}

// StopAtCleanup registers a cleanup of t that stops the server (SIGTERM, then SIGKILL after 5
// seconds) whether the test passed or not, and logs the end of its log if it failed; addr names
// it there.
func (p *Process) StopAtCleanup(t testing.TB, addr string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (pid %d, %s) log ends:\n%s", p.name, p.PID(), addr, p.LogTail(30))
		}
		p.Stop(5 * time.Second)
	})
}

// ZoneText is a zone file for zone: $ORIGIN and $TTL 3600, a SOA (serial 1), "NS ns1",
// "ns1 A 127.0.0.1", then records, zone file lines relative to the origin.
func ZoneText(zone string, records []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 3600\n", zone)
	b.WriteString("@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")
	for _, r := range records {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// AddrInUse reports whether a server's log says it could not bind its port.
func AddrInUse(log string) bool {
	l := strings.ToLower(log)
	return strings.Contains(l, "address already in use") || strings.Contains(l, "address in use")
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
