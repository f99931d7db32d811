package health

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/drover-dev/drover/fleet"
)

// sslRequestCode is the PostgreSQL protocol's SSLRequest code (1234 << 16 | 5679).
const sslRequestCode = 80877103

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

// newPostgres makes a postgres check: the server speaks the PostgreSQL protocol. It sends an
// SSLRequest, the one message a server answers before authentication, and wants the one-byte answer
// 'S' or 'N'. A port that merely accepts connections (a proxy with no backend, a server still
// starting that closes them) fails, which a tcp check would not catch; no credentials are needed.
func newPostgres(_ fleet.HealthCheck, d Dialer) (Prober, error) {
	return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
		c, err := dialTCP(ctx, d, target)
		if err != nil {
			return err
		}
		defer c.Close()
		var req [8]byte
		binary.BigEndian.PutUint32(req[0:4], 8)
		binary.BigEndian.PutUint32(req[4:8], sslRequestCode)
		if _, err := c.Write(req[:]); err != nil {
			return fmt.Errorf("postgres handshake: %w", err)
		}
		var answer [1]byte
		if _, err := io.ReadFull(c, answer[:]); err != nil {
			return fmt.Errorf("postgres handshake: no answer to SSLRequest: %w", err)
		}
		switch answer[0] {
		case 'S', 'N':
			return nil
		case 'E':
			return fmt.Errorf("postgres handshake: the server answered with an error (too many connections, or starting up)")
		default:
			return fmt.Errorf("postgres handshake: answer %q is not the PostgreSQL protocol", answer[0])
		}
	}), nil
}
