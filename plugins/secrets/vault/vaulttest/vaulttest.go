// Package vaulttest runs a real Vault dev server for a test: a stock Vault binary (built by
// `go tool task vault` into bin/vault from the ci/vault module), listening on 127.0.0.1 only, with its
// own random root token, stopped when the test ends whether it passed or not.
//
// A dev server keeps everything in memory, is unsealed, and has a KV version 2 engine at secret/.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBin names the Vault binary to use, overriding bin/vault and PATH.
const EnvBin = "DROVER_VAULT_BIN"

// Server is a running Vault dev server.
type Server struct {
	// Addr is the server's URL: "http://127.0.0.1:PORT".
	Addr string
	// RootToken is the dev server's root token, random per server.
	RootToken string
	// PID is the process ID of the vault server, the process listening on Addr.
	PID int
	// Bin is the binary that runs, LogPath the file its output goes to.
	Bin, LogPath string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	once   sync.Once
}

// Start starts a Vault dev server and returns it once /v1/sys/health says it is initialized, unsealed
// and active. It stops the server when the test ends. The binary is $DROVER_VAULT_BIN, else bin/vault
// at the root of the module (found by walking up to go.mod), else vault on PATH; with none, the test
// fails asking to run `go tool task vault`.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	var lastErr error
	for range 3 { // the free port can be taken between choosing it and Vault binding it
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("vaulttest: %v", lastErr)
	return nil
}

// FindBinary returns the Vault binary Start would run.
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBin); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBin, p, err)
		}
		return p, nil
	}
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, "bin", "vault")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("vault"); err == nil {
		return p, nil
	}
	return "", errors.New("no vault binary: run `go tool task vault` (builds bin/vault), or set " + EnvBin)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

var errAddrInUse = errors.New("address already in use")

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	home := t.TempDir()
	token := randomToken()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		Addr:      "http://" + listen,
		RootToken: token,
		Bin:       bin,
		LogPath:   filepath.Join(home, "vault.log"),
		exited:    make(chan struct{}),
	}
	logf, err := os.Create(s.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor

	cmd := exec.Command(bin, "server", "-dev",
		"-dev-root-token-id="+token,
		"-dev-listen-address="+listen,
		"-dev-no-store-token",
		"-log-level=warn",
	)
	cmd.Env = env(home)
	cmd.Dir = home
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd, s.PID = cmd, cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("vaulttest: vault server log (%s):\n%s", s.LogPath, s.logTail())
		}
	})

	if err := s.waitHealthy(30 * time.Second); err != nil {
		s.Stop()
		log := s.logTail()
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("vault on %s: %w", listen, errAddrInUse)
		}
		return nil, fmt.Errorf("vault dev server on %s: %w; log:\n%s", listen, err, log)
	}
	return s, nil
}

// Stop stops the server: SIGTERM to its PID, SIGKILL after 10 seconds. It returns once the process has
// exited and is safe to call more than once; Start's cleanup calls it.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// Exited reports whether the server process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *Server) waitHealthy(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		// 200 means initialized, unsealed and active; a dev server gets there by itself.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Addr+"/v1/sys/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("sys/health: %s", resp.Status)
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("vault exited before it was healthy (%s)", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %s: %w", timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}

// env is the parent's environment without VAULT_* (an operator's VAULT_ADDR or VAULT_TOKEN must not
// reach the test server) and with HOME in the test's temp dir, so Vault reads no ~/.vault config and
// writes nothing in the real home.
func env(home string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+home, "VAULT_CONFIG_PATH="+filepath.Join(home, "vault-cli.hcl"))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "root-" + hex.EncodeToString(b)
}
