package etcd_test

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

// etcdBinary finds the etcd server: Debian's etcd-server package installs /usr/bin/etcd.
func etcdBinary(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	tb.Fatal("no etcd server binary (etcd in $PATH or /usr/bin/etcd): these tests run the store against a real etcd; install it with `apt-get install etcd-server`")
	return ""
}

// freePort returns a loopback TCP port nobody listens on at the moment.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is the server's log, written by its process and read by the test.
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

// startEtcd starts a one-member etcd cluster on loopback with its data in a temporary directory,
// waits until it answers, and stops it (by its PID) when the test ends, failed or not. It returns
// the client URL.
func startEtcd(tb testing.TB) string {
	tb.Helper()
	return startEtcdWith(tb, "http", http.DefaultClient)
}

// startEtcdWith starts etcd with its client URL of scheme (https needs TLS flags in extra) and
// asks its health through hc.
func startEtcdWith(tb testing.TB, scheme string, hc *http.Client, extra ...string) string {
	tb.Helper()
	bin := etcdBinary(tb)
	dir := tb.TempDir()
	client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, freePort(tb))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(tb))
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
