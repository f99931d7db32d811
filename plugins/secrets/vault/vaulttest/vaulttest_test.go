package vaulttest_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

func TestStartAndStop(t *testing.T) {
	var s *vaulttest.Server
	t.Run("server", func(t *testing.T) {
		s = vaulttest.Start(t)
		if !strings.HasPrefix(s.Addr, "http://127.0.0.1:") {
			t.Errorf("Addr = %s, want http://127.0.0.1:PORT", s.Addr)
		}
		if !strings.HasPrefix(s.RootToken, "root-") || len(s.RootToken) < 20 {
			t.Errorf("RootToken = %q, want a random token", s.RootToken)
		}
		resp, err := http.Get(s.Addr + "/v1/sys/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("sys/health: %s", resp.Status)
		}
		// The root token works; a made-up one does not.
		for tok, want := range map[string]int{s.RootToken: http.StatusOK, "root-nope": http.StatusForbidden} {
			req, _ := http.NewRequest(http.MethodGet, s.Addr+"/v1/auth/token/lookup-self", nil)
			req.Header.Set("X-Vault-Token", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("lookup-self: %s, want %d", resp.Status, want)
			}
		}
		if runtime.GOOS == "linux" {
			port := s.Addr[strings.LastIndex(s.Addr, ":")+1:]
			pid, err := listenerPID(port)
			if err != nil {
				t.Fatal(err)
			}
			if pid != s.PID {
				t.Errorf("the process listening on %s is %d, Server.PID is %d", port, pid, s.PID)
			}
		}
	})
	// The subtest's cleanup stopped the server.
	if s == nil {
		t.Fatal("no server")
	}
	if !s.Exited() {
		t.Errorf("vault (pid %d) still runs after the test's cleanup", s.PID)
	}
	if err := syscall.Kill(s.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill -0 %d: %v, want ESRCH", s.PID, err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(s.Addr, "http://")); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections", s.Addr)
	}
	s.Stop() // again: a no-op
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := vaulttest.Start(t), vaulttest.Start(t)
	if a.Addr == b.Addr || a.RootToken == b.RootToken || a.PID == b.PID {
		t.Errorf("servers share something: %+v %+v", a, b)
	}
}

func TestFindBinary(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		t.Setenv(vaulttest.EnvBin, filepath.Join(t.TempDir(), "missing"))
		if _, err := vaulttest.FindBinary(); err == nil || !strings.Contains(err.Error(), vaulttest.EnvBin) {
			t.Errorf("err = %v, want one naming %s", err, vaulttest.EnvBin)
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Setenv(vaulttest.EnvBin, "")
		t.Setenv("PATH", t.TempDir())
		t.Chdir(t.TempDir()) // no go.mod above a temp dir
		_, err := vaulttest.FindBinary()
		if err == nil || !strings.Contains(err.Error(), "go tool task vault") {
			t.Errorf("err = %v, want one saying to run `go tool task vault`", err)
		}
	})
	t.Run("repo", func(t *testing.T) {
		t.Setenv(vaulttest.EnvBin, "")
		bin, err := vaulttest.FindBinary()
		if err != nil {
			t.Skip(err)
		}
		if filepath.Base(bin) != "vault" {
			t.Errorf("bin = %s", bin)
		}
	})
}

// listenerPID finds the process with a listening TCP socket on 127.0.0.1:port through /proc.
func listenerPID(port string) (int, error) {
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", p)
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == want && fields[3] == "0A" { // 0A: LISTEN
			inode = fields[9]
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("no listener on 127.0.0.1:%s in /proc/net/tcp", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && l == "socket:["+inode+"]" {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("no process holds socket inode %s", inode)
}
