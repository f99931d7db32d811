//go:build e2e && lab

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// pgQuery runs one simple query as user postgres on the PostgreSQL at addr, which must trust the
// connection (the e2e fleet's pg_hba does for the lab), and returns the rows as text. It speaks
// just enough of the frontend/backend protocol 3.0 for that: startup, AuthenticationOk, a simple
// Query, RowDescription, DataRow, CommandComplete, ErrorResponse and ReadyForQuery.
func pgQuery(ctx context.Context, addr, sql string) ([][]string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	params := "user\x00postgres\x00database\x00postgres\x00\x00"
	startup := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	startup = binary.BigEndian.AppendUint32(startup, 196608)
	if _, err := conn.Write(append(startup, params...)); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	if err := pgUntilReady(r, nil); err != nil {
		return nil, err
	}
	q := append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, uint32(4+len(sql)+1))...)
	if _, err := conn.Write(append(append(q, sql...), 0)); err != nil {
		return nil, err
	}
	var rows [][]string
	err = pgUntilReady(r, func(body []byte) {
		n := int(binary.BigEndian.Uint16(body))
		row, p := make([]string, 0, n), 2
		for range n {
			l := int(int32(binary.BigEndian.Uint32(body[p:])))
			p += 4
			if l < 0 {
				row = append(row, "")
				continue
			}
			row = append(row, string(body[p:p+l]))
			p += l
		}
		rows = append(rows, row)
	})
	conn.Write([]byte{'X', 0, 0, 0, 4})
	return rows, err
}

// pgUntilReady reads messages up to ReadyForQuery, handing each DataRow's body to row; an
// ErrorResponse is returned (after ReadyForQuery, or at once during startup).
func pgUntilReady(r *bufio.Reader, row func([]byte)) error {
	var failed error
	for {
		var head [5]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return err
		}
		body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		switch head[0] {
		case 'R':
			if code := binary.BigEndian.Uint32(body); code != 0 {
				return fmt.Errorf("postgres asks for authentication method %d; the e2e fleet's pg_hba trusts the lab", code)
			}
		case 'E':
			failed = errors.New("postgres: " + pgErrorText(body))
			if row == nil {
				return failed
			}
		case 'D':
			if row != nil {
				row(body)
			}
		case 'Z':
			return failed
		}
	}
}

func pgErrorText(body []byte) string {
	var parts []string
	for _, f := range strings.Split(string(body), "\x00") {
		if len(f) > 1 && (f[0] == 'M' || f[0] == 'C') {
			parts = append(parts, f[1:])
		}
	}
	return strings.Join(parts, " ")
}
