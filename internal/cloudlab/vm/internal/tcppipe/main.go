// Command tcppipe joins its standard input and output to a TCP connection: `tcppipe HOST:PORT`.
//
// qemu's user-mode network runs it once per guest connection to a guestfwd address (the `cmd:` form),
// with the guest's socket as stdin and stdout, so the guest reaches a service listening on the
// host's loopback (the fake metadata service, a Vault "in the VPC"). It uses the standard library
// only: the vm package builds it from this one file (embedded) without the module around it.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tcppipe HOST:PORT")
		os.Exit(2)
	}
	conn, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcppipe: %v\n", err)
		os.Exit(1)
	}
	tcp := conn.(*net.TCPConn)
	// Guest to service: at the guest's half close, pass the half close on, so a request without a
	// length still ends.
	go func() {
		io.Copy(tcp, os.Stdin)
		tcp.CloseWrite()
	}()
	// Service to guest: when the service is done, so is this connection.
	io.Copy(os.Stdout, tcp)
	tcp.Close()
}
