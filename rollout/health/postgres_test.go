package health_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
)

// The postgres check passes against a real PostgreSQL in the db role's boot test
// (cmd/drover TestE2EBuild) and its handoffs (TestE2EDBHandoff); here it must refuse what only
// looks like a database port.
func TestPostgresRefusesPortsThatAreNotPostgres(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	httpPort := server(t, false, &ok)

	closing := listen(t, func(c net.Conn) { c.Close() })

	for _, tc := range []struct {
		name   string
		target netip.AddrPort
		want   string
	}{
		{"an HTTP server, which waits for a request line", httpPort, "no answer to the startup message"},
		{"a port that closes every connection", closing, "no answer to the startup message"},
	} {
		c := build(t, fleet.HealthCheck{Type: "postgres", Port: int(tc.target.Port()), Timeout: 2 * time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		err := c.Prober.Probe(ctx, tc.target)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// listen serves each connection to a loopback port with handle, in a goroutine of its own, until
// the test ends.
func listen(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// backend answers every connection's StartupMessage with answer, after checking the message is
// protocol 3.0 asking for user postgres, as PostgreSQL's postmaster reads it.
func backend(t *testing.T, answer []byte) netip.AddrPort {
	return listen(t, func(c net.Conn) {
		defer c.Close()
		var head [8]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(head[:4])-8)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if binary.BigEndian.Uint32(head[4:]) != 196608 || !strings.Contains(string(body), "user\x00postgres\x00") {
			c.Write([]byte("not a startup message"))
			return
		}
		c.Write(answer)
		io.Copy(io.Discard, c)
	})
}

// message is a backend message: its type, length and body.
func message(kind byte, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{kind}, uint32(4+len(body))), body...)
}

// errorResponse is an ErrorResponse with severity FATAL, the SQLSTATE and the message.
func errorResponse(code, text string) []byte {
	return message('E', []byte("SFATAL\x00C"+code+"\x00M"+text+"\x00\x00"))
}

// TestPostgresIsReadyAsPgIsreadyDecides: a server that answers with an authentication request, or
// refuses who asks, is up; one that is starting up or recovering (57P03) is not, though it
// answers the SSLRequest handshake the check used to stop at.
func TestPostgresIsReadyAsPgIsreadyDecides(t *testing.T) {
	md5 := message('R', []byte{0, 0, 0, 5, 1, 2, 3, 4})
	for _, tc := range []struct {
		name   string
		answer []byte
		want   string // "" for healthy
	}{
		{"asks for a password (md5)", md5, ""},
		{"trusts the client (AuthenticationOk)", message('R', []byte{0, 0, 0, 0}), ""},
		{"no pg_hba.conf entry for this client", errorResponse("28000", "no pg_hba.conf entry for host"), ""},
		{"a notice, then a password request", append(message('N', []byte("SNOTICE\x00Mhello\x00\x00")), md5...), ""},
		{"starting up", errorResponse("57P03", "the database system is starting up"), "not accepting connections yet: the database system is starting up (SQLSTATE 57P03)"},
		{"recovering after a crash", errorResponse("57P03", "the database system is in recovery mode"), "in recovery mode"},
		{"an answer of another protocol", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), "is not the PostgreSQL protocol"},
	} {
		target := backend(t, tc.answer)
		c := build(t, fleet.HealthCheck{Type: "postgres", Port: int(target.Port()), Timeout: 2 * time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := c.Prober.Probe(ctx, target)
		cancel()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want healthy", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
