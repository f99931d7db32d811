//go:build e2e && lab

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
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

// The emulated Pi's forwards, on addresses of this test's own (127.0.126.0/24); ports other than
// 22 and 80 so that a host's own sshd or web server on 0.0.0.0 does not hold them.
const (
	piLabSSH  = "127.0.126.2:2222"
	piLabHTTP = "127.0.126.2:8080"
)

// TestE2EPiAB builds the pi role's card (its arm64 tree comes from the test cache after the first
// run), runs it on the lab's emulated Pi (internal/pilab: qemu's virt machine booted the way the
// Pi's firmware boots the card) and updates it in place with drover: strategy "ab" on a compute
// block of type "device", over SSH through the launcher's forward. Six boots, every check sharing
// them:
//
//  1. slot A (partition 2), the card as written: root partition 5, the watchdog is the VM's
//     i6300esb kept active with the image's 15 s, nginx answers; a file is put on the data
//     partition.
//  2. image 2 (one file changed) on slot B, on trial: drover wrote only the blocks that differ,
//     armed the trial and rebooted (killed by the crash hook after its write and after its reboot
//     step, and run again); the checks pass; promote commits slot B.
//  3. image 3, whose nginx cannot start, on slot A on trial: its checks fail and drover reboots it;
//  4. slot B again, committed: the rollout is rolled back, image 2 serves.
//  5. image 4, which hangs at boot (a kernel panic), on slot A on trial: the watchdog resets it;
//  6. slot B again: drover sees the device come back on its committed slot and records the rollout
//     rolled back. The data partition's file is there, and the host key never changed.
func TestE2EPiAB(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	for _, tool := range []string{"qemu-system-aarch64", "mtype", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (apt-get install qemu-system-arm mtools)", tool, err)
		}
	}
	t.Parallel()
	began := time.Now()
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
	pemKey, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"DEVICE_SSH_KEY=" + string(pem.EncodeToMemory(pemKey))}
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

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
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
	sshTo := &piSSH{t: t, signer: signer}
	drover := func(env []string, args ...string) result {
		return droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}

	// Boot 1: slot A, as the card was written.
	expectPiBoot(t, ctx, pi, 1, pilab.Boot{Partition: 2, After: pilab.EndPowerOn})
	waitPiConsole(t, ctx, pi, 1, "drover-boot: role pi image "+m.Identity+" booted")
	t.Logf("boot 1 (slot A): drover-boot after %s", time.Since(booted).Round(time.Second))
	c := sshTo.dial(ctx)
	sshTo.expect(c, "findmnt -no SOURCE /", "/dev/vda5")
	sshTo.expect(c, "cat /sys/class/watchdog/watchdog0/identity /sys/class/watchdog/watchdog0/state /sys/class/watchdog/watchdog0/timeout",
		"i6300ESB timer\nactive\n15")
	sshTo.expect(c, "findmnt -no SOURCE /data && echo kept > /data/keep.txt && sync && echo ok", "/dev/vda7\nok")
	c.Close()
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from the Pi") {
		t.Errorf("nginx through the HTTP forward: %q", body)
	}
	// drover pins the host key the Pi made at its first boot: given in the fleet, as a person would
	// after reading it on the Pi's console or from the refusal.
	editFleet(t, fleetFile, `hosts = ["127.0.126.2:2222"]`, fmt.Sprintf(`hosts = ["127.0.126.2:2222"]
  host_keys = { "127.0.126.2:2222" = %q }`, ssh.FingerprintSHA256(sshTo.key())))

	// Boot 2: image 2 (one file changed) on slot B, drover killed by the crash hook twice on the way.
	writeFile(t, filepath.Join(fleetDir, "pi", "index.html"), "<!doctype html><title>pi</title><h1>hello from image 2</h1>\n")
	img2, _ := buildPiCard(t, fleetFile)
	start := time.Now()
	for _, crash := range []string{"ab-write", "ab-reboot"} {
		if r := drover(append(env, "DROVER_TEST_CRASH_AFTER="+crash), "rollout", "start", "pi"); r.code == 0 {
			t.Fatalf("rollout start with the crash hook at %s: exit 0\n%s", crash, r.stdout)
		}
	}
	r := drover(env, "--output", "json", "rollout", "start", "pi")
	if r.code != 0 {
		t.Fatalf("rollout start pi (image 2): exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	toReady := time.Since(start)
	expectPiBoot(t, ctx, pi, 2, pilab.Boot{Partition: 3, Trial: true, After: pilab.EndReboot})
	rec := abRecord(t, r.stdout)
	if rec.State != "ready" || len(rec.Progress.AB.Hosts) != 1 {
		t.Fatalf("after rollout start: %s, %+v", rec.State, rec.Progress.AB)
	}
	h := rec.Progress.AB.Hosts[0]
	if h.From != "a" || h.To != "b" || h.Sent <= 0 || h.Sent > h.SlotBytes/10 {
		t.Errorf("the write of a one-file change: %+v; want slot a to b, at most 10%% of the slot sent", h)
	}
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from image 2") {
		t.Errorf("slot B on trial serves %q", body)
	}
	start = time.Now()
	if r := drover(env, "rollout", "promote", "pi"); r.code != 0 {
		t.Fatalf("rollout promote pi: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	t.Logf("image 2: rollout start to ready %s (write %s, %d of %d bytes; reboot to answering %s; checks %s); promote (commit, watch) %s",
		toReady.Round(time.Second), h.Write, h.Sent, h.SlotBytes, h.Boot, h.Health, time.Since(start).Round(time.Second))
	c = sshTo.dial(ctx)
	sshTo.expect(c, "findmnt -no SOURCE /; /usr/local/bin/drover-boot slot status | grep -o '\"committed\": *\"[ab]\"' | tr -d ' '", "/dev/vda6\n\"committed\":\"b\"")
	c.Close()

	// Boots 3 and 4: image 3, whose nginx cannot start; back on slot B by drover's reboot.
	writeFile(t, filepath.Join(fleetDir, "pi", "broken.conf"), "this is not nginx's syntax\n")
	editFleet(t, fleetFile, `"/root/.ssh/authorized_keys" = "pi/authorized_keys"`, `"/root/.ssh/authorized_keys" = "pi/authorized_keys"
      "/etc/nginx/conf.d/broken.conf" = "pi/broken.conf"`)
	buildPiCard(t, fleetFile)
	if r := drover(env, "rollout", "start", "pi"); r.code == 0 || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("rollout start of an image whose nginx fails: exit %d, want rolled back\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	expectPiBoot(t, ctx, pi, 3, pilab.Boot{Partition: 2, Trial: true, After: pilab.EndReboot})
	expectPiBoot(t, ctx, pi, 4, pilab.Boot{Partition: 3, After: pilab.EndReboot})
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from image 2") {
		t.Errorf("after the failed trial, the Pi serves %q; want image 2", body)
	}

	// Boots 5 and 6: image 4 hangs at boot; the watchdog resets it into slot B.
	editFleet(t, fleetFile, `
      "/etc/nginx/conf.d/broken.conf" = "pi/broken.conf"`, `
      "/etc/systemd/system/hang.service" = "pi/hang.service"`)
	writeFile(t, filepath.Join(fleetDir, "pi", "hang.service"), "[Unit]\nDescription=hang this boot (TestE2EPiAB)\nDefaultDependencies=no\nAfter=local-fs.target\nBefore=sysinit.target ssh.service\n\n[Service]\nType=oneshot\n"+
		// Early in the boot, before sshd: a panic that does not reboot (panic=10 on the card's
		// command line would); the kernel stops and nothing pets the watchdog.
		"ExecStart=/bin/sh -c 'echo 0 > /proc/sys/kernel/panic; echo c > /proc/sysrq-trigger'\n\n[Install]\nWantedBy=sysinit.target\n")
	editFleet(t, fleetFile, `run = ["systemctl enable nginx"]`, `run = ["systemctl enable nginx hang"]`)
	buildPiCard(t, fleetFile)
	start = time.Now()
	if r := drover(env, "rollout", "start", "pi"); r.code == 0 || !strings.Contains(r.stderr, "came back on its committed slot") {
		t.Fatalf("rollout start of an image that hangs: exit %d, want rolled back after the fallback\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	t.Logf("image 4 (hangs): rollout start to rolled back %s", time.Since(start).Round(time.Second))
	expectPiBoot(t, ctx, pi, 5, pilab.Boot{Partition: 2, Trial: true, After: pilab.EndReboot})
	if b := waitPiEnd(t, ctx, pi, 5); b.End != pilab.EndWatchdog {
		t.Errorf("boot 5 ended %s, want the watchdog's reset", b.End)
	}
	expectPiBoot(t, ctx, pi, 6, pilab.Boot{Partition: 3, After: pilab.EndWatchdog})

	c = sshTo.dial(ctx)
	sshTo.expect(c, "findmnt -no SOURCE /; cat /data/keep.txt", "/dev/vda6\nkept")
	c.Close()
	st := drover(env, "--output", "json", "rollout", "history", "pi")
	if st.code != 0 {
		t.Fatalf("rollout history: exit %d\n%s", st.code, st.stderr)
	}
	var recs []abRolloutJSON
	if err := json.Unmarshal([]byte(st.stdout), &recs); err != nil {
		t.Fatalf("rollout history --output json: %v\n%s", err, st.stdout)
	}
	var states []string
	for _, r := range recs {
		states = append(states, r.State)
	}
	if strings.Join(states, " ") != "rolled-back rolled-back retired" || recs[2].Image.Identity != img2.Identity {
		t.Errorf("history, newest first: %v; want rolled-back, rolled-back, retired (image 2)", states)
	}
	t.Logf("whole test: %s", time.Since(began).Round(time.Second))
}

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
