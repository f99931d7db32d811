//go:build e2e && lab

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-dev/drover/internal/pilab"
)

// What TestE2EPiAB reads of drover's output, and how it drives the emulated Pi.

// abRolloutJSON is what the test reads of a rollout record in drover's JSON output.
type abRolloutJSON struct {
	State string `json:"state"`
	Image struct {
		Identity string `json:"identity"`
	} `json:"image"`
	Progress struct {
		AB struct {
			Hosts []struct {
				From      string `json:"from"`
				To        string `json:"to"`
				Sent      int64  `json:"sent"`
				SlotBytes int64  `json:"slot_bytes"`
				Write     string `json:"write"`
				Boot      string `json:"boot"`
				Health    string `json:"health"`
			} `json:"hosts"`
		} `json:"ab"`
	} `json:"progress"`
}

// abRecord reads the rollout of a rollout command's --output json.
func abRecord(t *testing.T, out string) abRolloutJSON {
	t.Helper()
	var r struct {
		Rollout abRolloutJSON `json:"rollout"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("rollout --output json: %v\n%s", err, out)
	}
	return r.Rollout
}

// expectPiBoot waits for boot n and checks where the firmware booted it from.
func expectPiBoot(t *testing.T, ctx context.Context, pi *pilab.Pi, n int, want pilab.Boot) {
	t.Helper()
	b, err := pi.WaitBoot(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if b.Partition != want.Partition || b.Trial != want.Trial || b.After != want.After {
		t.Fatalf("boot %d: partition %d, trial %v, after %s; want partition %d, trial %v, after %s",
			n, b.Partition, b.Trial, b.After, want.Partition, want.Trial, want.After)
	}
	if !strings.Contains(b.Cmdline, pilab.VirtConsole) || !strings.Contains(b.Cmdline, "root=PARTUUID=") {
		t.Errorf("boot %d's command line %q lacks the slot's root or the virt console", n, b.Cmdline)
	}
}

func waitPiConsole(t *testing.T, ctx context.Context, pi *pilab.Pi, n int, text string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	if err := pi.WaitConsole(wctx, n, text); err != nil {
		t.Fatal(err)
	}
}

func waitPiEnd(t *testing.T, ctx context.Context, pi *pilab.Pi, n int) pilab.Boot {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	b, err := pi.WaitEnd(wctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// piSSH drives the guest as root over the SSH forward. The Pi keeps its host key on the card's
// data partition, so both slots and every update present the same one: a change fails the dial.
type piSSH struct {
	t       *testing.T
	signer  ssh.Signer
	mu      sync.Mutex
	hostKey ssh.PublicKey
}

func (s *piSSH) key() ssh.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostKey
}

// dial connects once sshd answers (it starts late in a boot under TCG), up to 4 minutes.
func (s *piSSH) dial(ctx context.Context) *ssh.Client {
	s.t.Helper()
	conf := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(s.signer)}, Timeout: 20 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.hostKey != nil && !bytes.Equal(s.hostKey.Marshal(), key.Marshal()) {
				return fmt.Errorf("the Pi's host key changed: %s, was %s", ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(s.hostKey))
			}
			s.hostKey = key
			return nil
		}}
	var lastErr error
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(3 * time.Second) {
		c, err := ssh.Dial("tcp", piLabSSH, conf)
		if err == nil {
			s.t.Cleanup(func() { c.Close() })
			return c
		}
		lastErr = err
	}
	s.t.Fatalf("ssh root@%s: %v", piLabSSH, lastErr)
	return nil
}

// expect runs cmd and checks its trimmed output.
func (s *piSSH) expect(c *ssh.Client, cmd, want string) {
	s.t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		s.t.Fatalf("ssh %q: %v", cmd, err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if got := strings.TrimSpace(string(out)); err != nil || got != want {
		s.t.Fatalf("ssh %q: %q, %v; want %q", cmd, got, err, want)
	}
}

// piHTTPGet gets url, retrying for up to two minutes, and returns the body of a 200.
func piHTTPGet(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(3 * time.Second) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return string(b)
		}
		last = resp.Status
	}
	t.Fatalf("GET %s: %s", url, last)
	return ""
}

// output runs cmd and returns its trimmed output, failing the test when it fails.
func (s *piSSH) output(c *ssh.Client, cmd string) string {
	s.t.Helper()
	out, err := s.try(c, cmd)
	if err != nil {
		s.t.Fatalf("ssh %q: %q, %v", cmd, out, err)
	}
	return out
}

// try runs cmd and returns its trimmed output and error.
func (s *piSSH) try(c *ssh.Client, cmd string) (string, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return strings.TrimSpace(string(out)), err
}

// journalSeconds is the monotonic time of the first line of this boot's journal that contains
// text, as journalctl -o short-monotonic prints it ("[   12.345678] host unit: text").
func journalSeconds(t *testing.T, s *piSSH, c *ssh.Client, text string) float64 {
	t.Helper()
	line := s.output(c, "journalctl -b -o short-monotonic --no-pager | grep -m1 -F '"+text+"' || true")
	open, closing := strings.IndexByte(line, '['), strings.IndexByte(line, ']')
	if open < 0 || closing < open {
		t.Fatalf("this boot's journal has no line with %q", text)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(line[open+1:closing]), 64)
	if err != nil {
		t.Fatalf("journal line %q: %v", line, err)
	}
	return secs
}

// cutWrite runs a drover command that writes a slot (run, in the background) and cuts the Pi's
// power once the device has written cutAfter bytes (wchar of its drover-boot slot write: the index
// of the running slot it answers first, about 3 MB here, then the blocks), then checks that the
// command failed and told to run it again. The power comes back at once. The device watches its
// own write (polling every 50 ms), since an SSH command per poll would be slower than the write.
func cutWrite(t *testing.T, ctx context.Context, pi *pilab.Pi, s *piSSH, cutAfter int64, run func() result) {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- run() }()
	c := s.dial(ctx)
	defer c.Close()
	start := time.Now()
	// The brackets keep pgrep from finding this shell's own command line.
	watch := fmt.Sprintf(`p=; while [ -z "$p" ]; do p=$(pgrep -f '[d]rover-boot slot write' | head -1); [ -n "$p" ] || sleep 0.2; done
while w=$(awk '/^wchar/ {print $2}' /proc/$p/io 2>/dev/null) && [ -n "$w" ]; do
  if [ "$w" -ge %d ]; then echo "$w"; exit 0; fi
  sleep 0.05
done
echo "the write ended"; exit 1`, cutAfter)
	seen := make(chan string, 1)
	go func() {
		out, err := s.try(c, watch)
		if err != nil {
			out += fmt.Sprintf(" (%v)", err)
		}
		seen <- out
	}()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	select {
	case r := <-done:
		t.Fatalf("the command ended (exit %d) before the test could cut the power\n%s", r.code, tail(r.stderr, 20))
	case <-wctx.Done():
		t.Fatalf("the device did not write %d bytes of the slot within 15 minutes", cutAfter)
	case out := <-seen:
		written, err := strconv.ParseInt(out, 10, 64)
		if err != nil {
			t.Fatalf("watching the device's write: %s", out)
		}
		if err := pi.PowerCut(ctx, true); err != nil {
			t.Fatal(err)
		}
		t.Logf("power cut %s into the command, the device's write at %d bytes", time.Since(start).Round(time.Second), written)
	}
	r := <-done
	if r.code == 0 || !strings.Contains(r.stderr, "run the command again") {
		t.Fatalf("the command whose write lost power: exit %d, want a failure that says to run it again\n%s", r.code, tail(r.stderr, 20))
	}
}

// rounded is a duration of drover's JSON ("4m51.849828401s") to a tenth of a second.
func rounded(d string) string {
	v, err := time.ParseDuration(d)
	if err != nil {
		return d
	}
	return v.Round(100 * time.Millisecond).String()
}
