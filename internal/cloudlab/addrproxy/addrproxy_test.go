package addrproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The address answers from whichever instance holds it when a connection arrives; with no holder a
// connection is closed; Close stops it all and frees the port.
func TestProxyFollowsTheHolder(t *testing.T) {
	// Both "instances" listen on the same port of two addresses: the port the address forwards.
	blueLn, err := net.Listen("tcp", "127.0.97.2:0")
	if err != nil {
		t.Fatal(err)
	}
	port := blueLn.Addr().(*net.TCPAddr).Port
	blueLn.Close()
	for addr, name := range map[string]string{"127.0.97.2": "blue", "127.0.97.3": "green"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }))
		s.Listener.Close()
		s.Listener = ln
		s.Start()
		t.Cleanup(s.Close)
	}
	var holder atomic.Value
	holder.Store(netip.MustParseAddr("127.0.97.2"))
	public := netip.MustParseAddr("127.0.97.100")
	p, err := Listen(public, []int{port}, func() netip.Addr { return holder.Load().(netip.Addr) })
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + net.JoinHostPort(public.String(), strconv.Itoa(port)) + "/")
		if err != nil {
			return "error"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "blue" {
		t.Fatalf("before the move: %q", got)
	}
	holder.Store(netip.Addr{})
	if got := get(); got != "error" {
		t.Errorf("with no holder: %q, want the connection closed", got)
	}
	holder.Store(netip.MustParseAddr("127.0.97.3"))
	if got := get(); got != "green" {
		t.Errorf("after the move: %q", got)
	}
	p.Close()
	p.Close() // idempotent
	ln, err := net.Listen("tcp", net.JoinHostPort(public.String(), strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("the port is still bound after Close: %v", err)
	}
	ln.Close()
	if _, err := Listen(netip.MustParseAddr("127.0.97.101"), []int{port, port}, nil); err == nil || !strings.Contains(err.Error(), "addrproxy:") {
		t.Errorf("binding one port twice: %v", err)
	}
}
