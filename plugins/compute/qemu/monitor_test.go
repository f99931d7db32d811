package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const usernet = "Hub -1 (n0):\r\n" +
	"  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n" +
	"  TCP[HOST_FORWARD]  16     127.0.0.100    80       10.0.2.15    80     0     0\r\n" +
	"  TCP[ESTABLISHED]   21       10.0.2.15 41234      127.0.0.1  8200     0     0\r\n" +
	"  TCP[HOST_FORWARD]  11      127.0.10.2  8080       10.0.2.15    80     0     0\r\n" +
	"  UDP[236 sec]       23       10.0.2.15   68     10.0.2.2    67     0     0\r\n"

func TestParseUsernet(t *testing.T) {
	got, err := parseUsernet(usernet)
	if err != nil {
		t.Fatal(err)
	}
	want := []Forward{
		{Host: netip.MustParseAddrPort("127.0.0.100:80"), GuestPort: 80},
		{Host: netip.MustParseAddrPort("127.0.10.2:8080"), GuestPort: 80},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parseUsernet = %v, want %v", got, want)
	}
	if _, err := parseUsernet("  TCP[HOST_FORWARD]  16  nonsense 80 10.0.2.15 80\n"); err == nil {
		t.Fatal("parseUsernet of a bad line: no error")
	}
}

// fakeQMP serves QMP on a unix socket the way qemu 7.2 does, answering HMP
// commands from replies and sending an event before each reply.
func fakeQMP(t *testing.T, path string, replies map[string]string) (seen func() []string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var lines []string
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}` + "\r\n"))
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				var req struct {
					Execute   string            `json:"execute"`
					Arguments map[string]string `json:"arguments"`
				}
				json.Unmarshal(sc.Bytes(), &req)
				c.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NIC_RX_FILTER_CHANGED"}` + "\r\n"))
				switch req.Execute {
				case "qmp_capabilities":
					c.Write([]byte(`{"return": {}}` + "\r\n"))
				case "human-monitor-command":
					line := req.Arguments["command-line"]
					mu.Lock()
					lines = append(lines, line)
					mu.Unlock()
					out, _ := json.Marshal(map[string]string{"return": replies[line]})
					c.Write(append(out, '\r', '\n'))
				default:
					c.Write([]byte(`{"error": {"class": "CommandNotFound", "desc": "The command ` + req.Execute + ` has not been found"}}` + "\r\n"))
				}
			}
			c.Close()
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lines)
	}
}

func TestMonitor(t *testing.T) {
	// A directory deep enough that the socket path does not fit a sockaddr.
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	sock := filepath.Join(dir, monitorFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // listen by a relative name, as qemu does for long paths
	seen := fakeQMP(t, monitorFile, map[string]string{
		"info usernet":                          usernet,
		"hostfwd_add n0 tcp:127.0.0.101:80-:80": "",
		"hostfwd_add n0 tcp:127.0.0.100:80-:80": "Could not set up host forwarding rule 'tcp:127.0.0.100:80-:80'\r\n",
		"hostfwd_remove n0 tcp:127.0.0.100:80":  "host forwarding rule for tcp:127.0.0.100:80 removed\r\n",
		"hostfwd_remove n0 tcp:127.0.0.102:80":  "host forwarding rule for tcp:127.0.0.102:80 not found\r\n",
		"hostfwd_remove n0 tcp:127.0.0.103:80":  "unrecognized netdev id 'n0'\r\n",
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := DialMonitor(ctx, "vm-test", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fws, err := m.Forwards(ctx)
	if err != nil || len(fws) != 2 {
		t.Fatalf("Forwards = %v, %v", fws, err)
	}
	f := func(s string) Forward { return Forward{Host: netip.MustParseAddrPort(s), GuestPort: 80} }
	if err := m.AddForward(ctx, f("127.0.0.101:80")); err != nil {
		t.Errorf("AddForward: %v", err)
	}
	if err := m.AddForward(ctx, f("127.0.0.100:80")); err == nil || !strings.Contains(err.Error(), "vm-test") {
		t.Errorf("AddForward of a bound address: %v, want an error naming the instance", err)
	}
	for addr, ok := range map[string]bool{"127.0.0.100:80": true, "127.0.0.102:80": true, "127.0.0.103:80": false} {
		if err := m.RemoveForward(ctx, netip.MustParseAddrPort(addr)); (err == nil) != ok {
			t.Errorf("RemoveForward(%s): %v", addr, err)
		}
	}
	if _, err := m.exec(ctx, "no-such-command", nil); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("exec of an unknown command: %v", err)
	}
	if got := seen(); len(got) != 6 {
		t.Errorf("server saw %d HMP commands, want 6: %q", len(got), got)
	}
	canceled, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := m.Forwards(canceled); err == nil {
		t.Error("Forwards with a canceled context: no error")
	}
}
