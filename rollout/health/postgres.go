package health

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/drover-dev/drover/fleet"
)

// protocolVersion is the PostgreSQL frontend/backend protocol 3.0 (3 << 16).
const protocolVersion = 196608

// cannotConnectNow is the SQLSTATE of a server that is starting up, in recovery or shutting down.
const cannotConnectNow = "57P03"

// dialTCP connects to target with ctx's deadline (5 s without one) on the connection, for checks
// that speak a protocol over it.
func dialTCP(ctx context.Context, d Dialer, target netip.AddrPort) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	return c, nil
}

// newPostgres makes a postgres check: the server accepts connections, as pg_isready decides it. It
// sends a StartupMessage (user and database "postgres", no TLS) and reads the answer: an
// authentication request, or an error other than 57P03, means the server is up and taking
// connections (a wrong user or a pg_hba.conf refusal is about who asks, not whether it is up); the
// error 57P03 means it is starting up, recovering after a crash or shutting down, and fails the
// check. No credentials are needed and none are sent. A port that merely accepts connections, or
// a server that answers the SSLRequest handshake but is still replaying its WAL, fails, which a
// tcp check would not catch.
func newPostgres(_ fleet.HealthCheck, d Dialer) (Prober, error) {
	return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
		c, err := dialTCP(ctx, d, target)
		if err != nil {
			return err
		}
		defer c.Close()
		params := "user\x00postgres\x00database\x00postgres\x00application_name\x00drover-health\x00\x00"
		msg := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
		msg = binary.BigEndian.AppendUint32(msg, protocolVersion)
		if _, err := c.Write(append(msg, params...)); err != nil {
			return fmt.Errorf("postgres startup: %w", err)
		}
		r := bufio.NewReader(c)
		for range 4 {
			kind, body, err := readPostgresMessage(r)
			if err != nil {
				return fmt.Errorf("postgres startup: no answer to the startup message: %w", err)
			}
			switch kind {
			case 'R': // an authentication request: the server took the connection
				_, _ = c.Write([]byte{'X', 0, 0, 0, 4})
				return nil
			case 'E':
				code, text := postgresError(body)
				if code == cannotConnectNow {
					return fmt.Errorf("postgres startup: not accepting connections yet: %s (SQLSTATE %s)", text, code)
				}
				return nil
			case 'v', 'N': // NegotiateProtocolVersion or a notice: the answer follows
				continue
			default:
				return fmt.Errorf("postgres startup: answer %q is not the PostgreSQL protocol", kind)
			}
		}
		return fmt.Errorf("postgres startup: no authentication request or error in the first 4 messages")
	}), nil
}

// readPostgresMessage reads one backend message: its type byte and body. A length that no startup
// answer has (over 64 KiB) is refused, so that a stranger on the port cannot make it read forever.
func readPostgresMessage(r *bufio.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 4 || n > 64<<10 {
		return head[0], nil, fmt.Errorf("message %q of length %d is not the PostgreSQL protocol", head[0], n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return head[0], body, nil
}

// postgresError returns an ErrorResponse's SQLSTATE (field C) and message (field M).
func postgresError(body []byte) (code, text string) {
	for len(body) > 1 && body[0] != 0 {
		field := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break
		}
		value := string(body[1 : 1+end])
		switch field {
		case 'C':
			code = value
		case 'M':
			text = value
		}
		body = body[2+end:]
	}
	return code, text
}
