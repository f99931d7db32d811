//go:build e2e

package tree

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The e2e tests run the real mmdebstrap, chroot, mount and ansible-playbook
// as root. Base trees are cached in $DROVER_TEST_CACHE (default
// /var/tmp/drover-test-cache), so only the first run pays for building
// them; $DROVER_TEST_MIRROR overrides the Debian mirror.

func testCache(t *testing.T) *Cache {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := os.Getenv("DROVER_TEST_CACHE")
	if dir == "" {
		dir = "/var/tmp/drover-test-cache"
	}
	return &Cache{Dir: dir}
}

// smallSpec is the base most e2e tests share: small, but with systemd (for
// systemctl enable), dbus and openssh-server (machine ids and host keys
// for hygiene) and python3 (for Ansible).
func smallSpec() BaseSpec {
	return BaseSpec{
		Suite:    "bookworm",
		Arch:     "amd64",
		Mirror:   os.Getenv("DROVER_TEST_MIRROR"),
		Packages: []string{"dbus", "openssh-server", "python3", "systemd"},
	}
}

// testContext ends before the test binary's deadline, so that a slow
// build fails with its own error rather than a panic dump.
func testContext(t *testing.T, limit time.Duration) context.Context {
	deadline := time.Now().Add(limit)
	if d, ok := t.Deadline(); ok && d.Add(-10*time.Second).Before(deadline) {
		deadline = d.Add(-10 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// smallBase returns the cached small base, building it if needed.
func smallBase(t *testing.T) string {
	t.Helper()
	start := time.Now()
	dir, hit, err := testCache(t).Base(testContext(t, 20*time.Minute), smallSpec(), &testLog{t: t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("small base %s (hit %v) in %s", dir, hit, time.Since(start).Round(time.Millisecond))
	return dir
}

// copyOfSmallBase gives the test its own copy of the small base.
func copyOfSmallBase(t *testing.T) string {
	t.Helper()
	base := smallBase(t)
	work := filepath.Join(t.TempDir(), "root")
	start := time.Now()
	if err := Copy(testContext(t, 5*time.Minute), base, work); err != nil {
		t.Fatal(err)
	}
	t.Logf("copied base in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { assertNothingMounted(t, work) })
	return work
}

// assertNothingMounted fails when anything is mounted at or below dir.
func assertNothingMounted(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	real, err := realPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	points, _ := parseMountinfo(bytes.NewReader(data))
	for _, p := range points {
		if p == real || strings.HasPrefix(p, real+"/") {
			t.Errorf("%s is mounted after the test", p)
		}
	}
}

// testLog sends a command's output to the test log line by line.
type testLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
	all bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}
