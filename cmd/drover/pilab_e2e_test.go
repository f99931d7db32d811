//go:build e2e && lab

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-dev/drover/internal/pilab"
)

// The emulated Pi's forwards, on addresses of this test's own (127.0.124.0/24); ports other than
// 22 and 80 so that a host's own sshd or web server on 0.0.0.0 does not hold them.
const (
	piLabSSH  = "127.0.124.2:2222"
	piLabHTTP = "127.0.124.2:8080"
)

// TestE2EPiLab builds the pi role's card (its arm64 tree comes from the test cache after the first
// run) and runs it on the lab's emulated Pi (internal/pilab: qemu's virt machine booted the way the
// Pi's firmware boots the card), driving the guest over SSH through the launcher's forward. One
// card, four boots, every check sharing them:
//
//  1. slot A (partition 2), not a trial: drover-boot reports the image on the console, the root is
//     partition 5, the watchdog is the VM's i6300esb and systemd keeps it active with the image's
//     15 s, nginx answers through the HTTP forward. The guest names slot B for a trial in
//     autoboot.txt's [tryboot] section, arms the trial through the mailbox stand-in and reboots.
//  2. slot B (partition 3) on trial, root partition 6. The guest hangs (a kernel panic: it stops
//     everything, systemd's petting included), and the watchdog resets it.
//  3. slot A again, not a trial: the flag was consumed and nothing committed B. The guest arms a
//     trial again, and the power is cut (qemu killed).
//  4. slot A, not a trial: the flag did not survive the power cut; drover-boot reports the image.
func TestE2EPiLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	for _, tool := range []string{"qemu-system-aarch64", "mtype", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (apt-get install qemu-system-arm mtools)", tool, err)
		}
	}
	t.Parallel()
	fleetDir := t.TempDir()
	copyDir(t, "testdata/pilab", fleetDir)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fleetDir, "pi", "authorized_keys"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	m, art := buildPiCard(t, fleetFile)
	if m.Card == nil || art == nil {
		t.Fatalf("manifest: card %+v, artifact %+v; want an rpi-sd card", m.Card, art)
	}
	// The VM writes its card: give it a copy, not the image directory's.
	card := filepath.Join(t.TempDir(), "card.img")
	src := filepath.Join(fleetDir, ".drover", "images", strings.TrimPrefix(m.Identity, "sha256:"), art.File)
	if out, err := exec.Command("cp", "--sparse=always", src, card).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	labDir := t.TempDir()
	booted := time.Now()
	pi, err := pilab.Start(ctx, pilab.Config{Card: card, Dir: labDir, Forwards: map[int]string{22: piLabSSH, 80: piLabHTTP}})
	t.Cleanup(func() {
		if err := pi.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(pi.ConsolePath())
			t.Logf("the emulated Pi's console ends:\n%s", b[max(0, len(b)-6000):])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	identity := "drover-boot: role pi image " + m.Identity + " booted"
	sshTo := &piSSH{t: t, signer: signer, hostKeys: map[int]ssh.PublicKey{}}

	// Boot 1: slot A.
	expectPiBoot(t, ctx, pi, 1, pilab.Boot{Partition: 2, After: pilab.EndPowerOn})
	waitPiConsole(t, ctx, pi, 1, identity)
	t.Logf("boot 1 (slot A): drover-boot after %s", time.Since(booted).Round(time.Second))
	c := sshTo.dial(ctx, 2)
	sshTo.expect(c, "findmnt -no SOURCE /", "/dev/vda5")
	sshTo.expect(c, "cat /sys/class/watchdog/watchdog0/identity /sys/class/watchdog/watchdog0/state /sys/class/watchdog/watchdog0/timeout",
		"i6300ESB timer\nactive\n15")
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from the Pi") {
		t.Errorf("nginx through the HTTP forward: %q", body)
	}
	// What the ab strategy does through drover-boot, by hand: slot B for a trial, the flag armed
	// through the mailbox stand-in, a reboot.
	sshTo.expect(c, "mount -t vfat /dev/vda1 /mnt && printf '[all]\\ntryboot_a_b=1\\nboot_partition=2\\n[tryboot]\\nboot_partition=3\\n' > /mnt/autoboot.txt && umount /mnt && echo ok", "ok")
	sshTo.expect(c, "printf 'tryboot\\n' > /dev/virtio-ports/"+pilab.TrybootPort+" && echo ok", "ok")
	sshTo.fire(c, "systemctl reboot")
	if b := waitPiEnd(t, ctx, pi, 1); b.End != pilab.EndReboot || !b.ArmedTryboot {
		t.Fatalf("boot 1 ended %s, armed %v; want a reboot with the trial armed", b.End, b.ArmedTryboot)
	}

	// Boot 2: slot B on trial; it hangs.
	booted = time.Now()
	expectPiBoot(t, ctx, pi, 2, pilab.Boot{Partition: 3, Trial: true, After: pilab.EndReboot})
	waitPiConsole(t, ctx, pi, 2, identity)
	t.Logf("boot 2 (slot B, trial): drover-boot after %s", time.Since(booted).Round(time.Second))
	c = sshTo.dial(ctx, 3)
	sshTo.expect(c, "findmnt -no SOURCE /; cat /sys/class/watchdog/watchdog0/state", "/dev/vda6\nactive")
	hung := time.Now()
	sshTo.fire(c, "echo c > /proc/sysrq-trigger")
	waitPiConsole(t, ctx, pi, 2, "Kernel panic")
	if b := waitPiEnd(t, ctx, pi, 2); b.End != pilab.EndWatchdog {
		t.Fatalf("boot 2 ended %s, want the watchdog's reset", b.End)
	}
	t.Logf("boot 2: the watchdog reset the hung guest after %s", time.Since(hung).Round(time.Second))

	// Boot 3: back on slot A without a trial; armed again, then the power is cut.
	booted = time.Now()
	expectPiBoot(t, ctx, pi, 3, pilab.Boot{Partition: 2, After: pilab.EndWatchdog})
	waitPiConsole(t, ctx, pi, 3, identity)
	t.Logf("boot 3 (slot A): drover-boot after %s", time.Since(booted).Round(time.Second))
	c = sshTo.dial(ctx, 2)
	sshTo.expect(c, "findmnt -no SOURCE /; printf 'tryboot\\n' > /dev/virtio-ports/"+pilab.TrybootPort+" && echo armed", "/dev/vda5\narmed")
	c.Close()
	if err := pi.PowerCut(ctx, true); err != nil {
		t.Fatal(err)
	}
	if b := pi.Boots()[2]; b.End != pilab.EndPowerCut || !b.ArmedTryboot {
		t.Fatalf("boot 3 ended %s, armed %v; want a power cut with the trial armed", b.End, b.ArmedTryboot)
	}

	// Boot 4: slot A, the flag lost with the power.
	booted = time.Now()
	expectPiBoot(t, ctx, pi, 4, pilab.Boot{Partition: 2, After: pilab.EndPowerCut})
	waitPiConsole(t, ctx, pi, 4, identity)
	t.Logf("boot 4 (slot A): drover-boot after %s", time.Since(booted).Round(time.Second))

	// What tests of other packages read: boots.json, and the console log with every boot.
	var recorded []pilab.Boot
	if b, err := os.ReadFile(filepath.Join(labDir, "boots.json")); err != nil || json.Unmarshal(b, &recorded) != nil || len(recorded) != 4 {
		t.Errorf("boots.json: %d boots, %v", len(recorded), err)
	}
	if b, _ := os.ReadFile(pi.ConsolePath()); bytes.Count(b, []byte(identity)) != 4 || !bytes.Contains(b, []byte("pilab: boot 4: partition 2, after power-cut")) {
		t.Errorf("console.log lacks a boot's drover-boot line or the launcher's boot 4 line")
	}
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

// piSSH drives the guest as root over the SSH forward. Each slot has its own host key (a slot's
// first boot makes it), pinned at first contact.
type piSSH struct {
	t        *testing.T
	signer   ssh.Signer
	mu       sync.Mutex
	hostKeys map[int]ssh.PublicKey // by boot partition
}

// dial connects once sshd answers (it starts late in a boot under TCG), up to 4 minutes.
func (s *piSSH) dial(ctx context.Context, partition int) *ssh.Client {
	s.t.Helper()
	conf := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(s.signer)}, Timeout: 20 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if pinned, ok := s.hostKeys[partition]; ok && !bytes.Equal(pinned.Marshal(), key.Marshal()) {
				return fmt.Errorf("host key of slot partition %d changed", partition)
			}
			s.hostKeys[partition] = key
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

// fire starts cmd, which ends the guest's SSH (a reboot, a panic), and closes the connection.
func (s *piSSH) fire(c *ssh.Client, cmd string) {
	s.t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		s.t.Fatalf("ssh %q: %v", cmd, err)
	}
	if err := sess.Start(cmd); err != nil {
		s.t.Fatalf("ssh %q: %v", cmd, err)
	}
	done := make(chan struct{})
	go func() { sess.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	c.Close()
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
