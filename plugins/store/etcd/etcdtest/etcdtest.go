// Package etcdtest starts a real etcd server for tests of code that shares state through the etcd
// store: a one-member cluster on loopback, with its data in a temporary directory, stopped by its
// PID when the test ends. It needs the etcd binary (Debian's etcd-server package: /usr/bin/etcd).
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Binary finds the etcd server: etcd in $PATH, else /usr/bin/etcd. A test without one fails,
// naming the package to install: the tests of shared state never skip in silence.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	tb.Fatal("no etcd server binary (etcd in $PATH or /usr/bin/etcd): install it with `apt-get install etcd-server`")
	return ""
}

// Start starts the server, waits until it answers /health, and returns its client URL
// (http://127.0.0.1:PORT). The server is killed by its PID when tb ends, failed or not; its log is
// printed when tb failed.
func Start(tb testing.TB) string {
	tb.Helper()
	return StartWith(tb, "http", http.DefaultClient)
}

// StartWith is Start with the client URL of scheme ("https" needs etcd's TLS flags in extra) and
// the server's health asked through hc (a client that trusts its certificate).
func StartWith(tb testing.TB, scheme string, hc *http.Client, extra ...string) string {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, FreePort(tb))
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb))
	cmd := exec.Command(bin,
		"--name", "drover-test",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "drover-test="+peer, "--initial-cluster-state", "new",
		"--initial-cluster-token", filepath.Base(dir),
		"--logger", "zap", "--log-level", "warn")
	cmd.Args = append(cmd.Args, extra...)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if tb.Failed() {
			tb.Logf("etcd (pid %d) log:\n%s", cmd.Process.Pid, log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			tb.Fatalf("etcd exited before it answered: %v\n%s", err, log.String())
		default:
		}
		if healthy(hc, client) {
			return client
		}
		if time.Now().After(deadline) {
			tb.Fatalf("etcd at %s did not become healthy within 30s:\n%s", client, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port nobody listens on at the moment.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// healthy asks etcd's /health endpoint whether the member serves requests.
func healthy(hc *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode == http.StatusOK && bytes.Contains(body.Bytes(), []byte(`"health":"true"`))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
