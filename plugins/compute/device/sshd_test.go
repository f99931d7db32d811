package device

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshd is a real OpenSSH server started for a test on a loopback address of this helper's range,
// logging into the test's own user, with drover-boot's overrides set for its sessions (SetEnv), so
// the "device" is a card file. Stopped by PID when the test ends.
type sshd struct {
	addr     string // host:port
	hostPub  string // the host key's public file
	dir      string
	clientPK []byte
	env      map[string]string
}

var nextAddr = 10

// startSSHD starts sshd; env is set in every session (DROVER_BOOT_DISK, ...).
func startSSHD(t *testing.T, env map[string]string) *sshd {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v (apt-get install openssh-server; .ci/run installs it)", bin, err)
	}
	dir := t.TempDir()
	keygen := func(name string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	keygen("host")
	keygen("client")
	pub, err := os.ReadFile(filepath.Join(dir, "client.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	nextAddr++
	ip := fmt.Sprintf("127.0.122.%d", nextAddr+os.Getpid()%100)
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var setenv []string
	for k, v := range env {
		setenv = append(setenv, k+"="+v)
	}
	conf := fmt.Sprintf(`ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
SetEnv %s
`, addr, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"), strings.Join(setenv, " "))
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	}
	log, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("sshd log:\n%s", data)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(log.Name())
			t.Fatalf("sshd did not listen on %s: %v\n%s", addr, err, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	key, err := os.ReadFile(filepath.Join(dir, "client"))
	if err != nil {
		t.Fatal(err)
	}
	return &sshd{addr: addr, hostPub: filepath.Join(dir, "host.pub"), dir: dir, clientPK: key, env: env}
}

// fingerprint is the host key's SHA256 fingerprint as ssh-keygen prints it.
func (s *sshd) fingerprint(t *testing.T) string {
	out, err := exec.Command("ssh-keygen", "-lf", s.hostPub).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[1]
}

// buildDroverBoot builds the agent the test's sessions run.
func buildDroverBoot(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "drover-boot")
	cmd := exec.Command("go", "build", "-o", out, "github.com/drover-dev/drover/cmd/drover-boot")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building drover-boot: %v: %s", err, b)
	}
	return out
}
