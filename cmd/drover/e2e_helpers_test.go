//go:build e2e

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binDir holds drover and drover-boot built once for every e2e test of this package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drover-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	builds := [][]string{
		{"build", "-o", filepath.Join(dir, "drover"), "."},
		{"build", "-o", filepath.Join(dir, "drover-boot-linux-amd64"), "../drover-boot"},
		{"build", "-o", filepath.Join(dir, "drover-boot-linux-arm64"), "../drover-boot"},
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if strings.HasSuffix(args[2], "arm64") {
			cmd.Env = append(cmd.Env, "GOARCH=arm64")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go %v: %v\n%s", args, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the drover binary.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	maxRSS         int64 // peak resident memory of drover, KiB
}

// droverExec runs the real drover binary with the fleet and state of a test.
func droverExec(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return droverExecInheriting(t, nil, env, args...)
}

// droverExecInheriting is droverExec with inherited open in drover as descriptors 3 and up, not
// close-on-exec, the way Packer starts its plugins.
func droverExecInheriting(t *testing.T, inherited []*os.File, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "drover"), args...)
	cmd.Env = append(append(os.Environ(), "DROVER_BOOT_DIR="+binDir, "CI=true"), append(sharedCache(), env...)...)
	cmd.ExtraFiles = inherited
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start), maxRSS: maxRSSOf(cmd)}
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("drover %v: %v", args, err)
	}
	t.Logf("drover %s: exit %d in %s\n%s%s", strings.Join(args, " "), r.code, r.elapsed.Round(time.Millisecond), r.stdout, compactHealth(r.stderr))
	return r
}

// compactHealth shortens each run of more than four consecutive failed health-check lines to its
// first two, a count and its last: a rollout waiting minutes for a boot prints hundreds, which
// would bury the lines around them (and CI keeps only a log's head and tail).
func compactHealth(s string) string {
	lines := strings.SplitAfter(s, "\n")
	failed := func(l string) bool { return strings.Contains(l, ": health: ") && !strings.Contains(l, "healthy") }
	var b strings.Builder
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && failed(lines[j]) {
			j++
		}
		if n := j - i; n > 4 {
			b.WriteString(lines[i] + lines[i+1])
			fmt.Fprintf(&b, "        … %d more failed health checks like these …\n", n-3)
			b.WriteString(lines[j-1])
			i = j
			continue
		}
		if j == i {
			j++
		}
		for ; i < j; i++ {
			b.WriteString(lines[i])
		}
	}
	return b.String()
}

func maxRSSOf(cmd *exec.Cmd) int64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss // KiB on Linux
	}
	return 0
}

// sharedCache points drover's base-tree cache at DROVER_TEST_CACHE/drover when that is set (go tool
// task test sets it), so every e2e test of every package builds a base tree at most once; without it
// each test state directory starts from scratch.
func sharedCache() []string {
	if dir := os.Getenv("DROVER_TEST_CACHE"); dir != "" {
		return []string{"DROVER_CACHE_DIR=" + filepath.Join(dir, "drover")}
	}
	return nil
}

// copyDir copies a fleet directory so a test can change its files.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bootAndGet boots a raw image under qemu (TCG, -snapshot so the image is never written), forwards a
// loopback port to the guest's port 80, and waits for an HTTP 200. The VM is killed by its PID when
// the test ends, whatever happened.
func bootAndGet(t *testing.T, raw, firmware string, deadline time.Duration) (body string, bootTime time.Duration) {
	t.Helper()
	port := freePort(t)
	client := &http.Client{Timeout: 3 * time.Second}
	took := bootAndProbe(t, raw, firmware, deadline, port, 80, func() bool {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 200
	})
	return body, took
}

// bootAndProbe boots a raw image with a TCP host forward from a loopback port to a guest port and
// calls probe every second until it reports success or the deadline passes.
func bootAndProbe(t *testing.T, raw, firmware string, deadline time.Duration, port, guestPort int, probe func() bool) time.Duration {
	t.Helper()
	serial := filepath.Join(t.TempDir(), "serial.log")
	args := []string{"-accel", "tcg", "-m", "1024", "-nographic", "-monitor", "none", "-serial", "file:" + serial,
		"-no-reboot", "-drive", "file=" + raw + ",format=raw,if=virtio,snapshot=on",
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d", port, guestPort), "-device", "virtio-net-pci,netdev=n0"}
	qemu := "qemu-system-x86_64"
	switch firmware {
	case "uefi":
		args = append(args, "-bios", "/usr/share/ovmf/OVMF.fd")
	case "uefi-arm64":
		// qemu's virt machine with EDK2 (qemu-efi-aarch64), the arm64 cloud's shape; every
		// instruction is emulated, so it is the slowest boot of the suite.
		qemu = "qemu-system-aarch64"
		args = append(args, "-M", "virt", "-cpu", "max", "-bios", "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")
	}
	cmd := exec.Command(qemu, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for ctx.Err() == nil {
		if probe() {
			return time.Since(start)
		}
		time.Sleep(time.Second)
	}
	log, _ := os.ReadFile(serial)
	lines := strings.Split(string(log), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Fatalf("%s boot: the probe on the host forward to port %d never passed within %s; serial console tail:\n%s", firmware, guestPort, deadline, strings.Join(lines, "\n"))
	return 0
}

// mountsUnder lists mount points below a directory.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// descriptorsSeen is what a role's run command `echo drover-fds: $(ls /proc/self/fd | tr '\n' ' ')`
// printed into its build log, or "" if it printed nothing. ls lists 0-2 and the descriptor of the
// directory it reads (3), so "0 1 2 3" means the command inherited nothing else.
func descriptorsSeen(buildLog []byte) string {
	seen := regexp.MustCompile(`(?m)^drover-fds: (.*)$`).FindSubmatch(buildLog)
	if seen == nil {
		return ""
	}
	return string(bytes.TrimSpace(seen[1]))
}
