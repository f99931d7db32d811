//go:build e2e && lab

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-dev/drover/internal/pilab"
)

// The emulated Pi's forwards, on addresses of this test's own (127.0.127.0/24); ports other than
// 22 and 80 so that a host's own sshd or web server on 0.0.0.0 does not hold them.
const (
	piLabSSH  = "127.0.127.2:2222"
	piLabHTTP = "127.0.127.2:8080"
)

// TestE2EPiAB builds the pi role's card (its arm64 tree comes from the test cache after the first
// run), runs it on the lab's emulated Pi (internal/pilab: qemu's virt machine booted the way the
// Pi's firmware boots the card) and updates it in place with drover: strategy "ab" on a compute
// block of type "device", over SSH through the launcher's forward. Eight boots, every check sharing
// them:
//
//  1. slot A (partition 2), the card as written: root partition 5, the watchdog is the VM's
//     i6300esb kept active with the image's 15 s and armed before the local file systems, nginx
//     answers; a file is put on the data partition.
//  2. image 2 (one file changed) on slot B, on trial: drover wrote only the blocks that differ,
//     armed the trial and rebooted (killed by the crash hook after every state and every step on
//     the device, and run again each time); the checks pass; promote commits slot B (killed before
//     and after the commit).
//  3. rollout rollback after the commit (killed after each of its steps): slot A (image 1) on
//     trial, committed; image 1 serves.
//  4. image 3, whose nginx cannot start, on slot B on trial: its checks fail and drover reboots it;
//  5. slot A again, committed: the rollout is rolled back, image 1 serves.
//  6. image 4's write loses power part way (qemu killed): slot A boots, nothing armed; the command,
//     run again, completes the write and arms the trial;
//  7. image 4 hangs at boot (a kernel panic after the watchdog is armed) on slot B: the watchdog
//     resets it;
//  8. slot A again: drover sees the device come back on its committed slot and records the rollout
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
	takeLane(t)
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
		if pi == nil {
			return // Start failed before qemu ran
		}
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
	// systemd arms the watchdog before the boot mounts its file systems (its driver is loaded first
	// thing), so a trial that hangs after that is reset: image 4's hang relies on it.
	armed, localFS := journalSeconds(t, sshTo, c, "Using hardware watchdog"), journalSeconds(t, sshTo, c, "Reached target local-fs.target")
	t.Logf("boot 1: the watchdog armed %.1f s into the boot, local file systems at %.1f s", armed, localFS)
	if armed >= localFS {
		t.Errorf("the watchdog was armed at %.1f s, after the local file systems (%.1f s): an early hang would not be reset", armed, localFS)
	}
	sshTo.expect(c, "findmnt -no SOURCE /data && echo kept > /data/keep.txt && sync && echo ok", "/dev/vda7\nok")
	c.Close()
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from the Pi") {
		t.Errorf("nginx through the HTTP forward: %q", body)
	}
	// drover pins the host key the Pi made at its first boot: given in the fleet, as a person would
	// after reading it on the Pi's console or from the refusal.
	editFleet(t, fleetFile, `hosts = ["127.0.127.2:2222"]`, fmt.Sprintf(`hosts = ["127.0.127.2:2222"]
  host_keys = { "127.0.127.2:2222" = %q }`, ssh.FingerprintSHA256(sshTo.key())))

	// Boot 2: image 2 (one file changed) on slot B, drover killed by the crash hook twice on the way.
	writeFile(t, filepath.Join(fleetDir, "pi", "index.html"), "<!doctype html><title>pi</title><h1>hello from image 2</h1>\n")
	img2, _ := buildPiCard(t, fleetFile)
	start := time.Now()
	// kill -9 after every state and every step on the device, each rerun going one step further.
	crashAt := func(points []string, args ...string) {
		t.Helper()
		for _, crash := range points {
			if r := drover(append(env, "DROVER_TEST_CRASH_AFTER="+crash), args...); r.code != 137 {
				t.Fatalf("%s with the crash hook at %s: exit %d, want 137 (killed)\n%s\n%s", strings.Join(args, " "), crash, r.code, r.stdout, tail(r.stderr, 20))
			}
		}
	}
	crashAt([]string{"planned", "booting", "ab-write", "ab-trial", "ab-reboot", "ab-up", "checking", "ready"}, "rollout", "start", "pi")
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
	// promote commits slot B; drover is killed before the commit, before it is recorded, and right
	// after it is recorded (the rollout still cutting over).
	start = time.Now()
	crashAt([]string{"cutting-over", "ab-commit", "ab-committed"}, "rollout", "promote", "pi")
	promoted := time.Since(start)
	t.Logf("image 2: rollout start to ready %s (write %s, %d of %d bytes; reboot to answering %s; checks %s); promote to committed %s",
		toReady.Round(time.Second), rounded(h.Write), h.Sent, h.SlotBytes, rounded(h.Boot), rounded(h.Health), promoted.Round(time.Second))
	c = sshTo.dial(ctx)
	sshTo.expect(c, "findmnt -no SOURCE /; /usr/local/bin/drover-boot slot status | grep -o '\"committed\": *\"[ab]\"' | tr -d ' '", "/dev/vda6\n\"committed\":\"b\"")
	c.Close()

	// Boot 3: rollback after the commit: slot A (image 1) on trial, then committed.
	start = time.Now()
	crashAt([]string{"ab-back-trial", "ab-back-reboot", "ab-back-commit", "ab-back"}, "rollout", "rollback", "pi")
	if r := drover(env, "rollout", "rollback", "pi"); r.code != 0 {
		t.Fatalf("rollout rollback pi after the commit: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	t.Logf("rollback after the commit (trial of slot A, commit): %s", time.Since(start).Round(time.Second))
	expectPiBoot(t, ctx, pi, 3, pilab.Boot{Partition: 2, Trial: true, After: pilab.EndReboot})
	c = sshTo.dial(ctx)
	sshTo.expect(c, "findmnt -no SOURCE /; /usr/local/bin/drover-boot slot status | grep -o '\"committed\": *\"[ab]\"' | tr -d ' '", "/dev/vda5\n\"committed\":\"a\"")
	c.Close()
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from the Pi") {
		t.Errorf("after the rollback, the Pi serves %q; want image 1", body)
	}

	// Boots 4 and 5: image 3, whose nginx cannot start, on slot B on trial; back on slot A by
	// drover's reboot.
	writeFile(t, filepath.Join(fleetDir, "pi", "broken.conf"), "this is not nginx's syntax\n")
	editFleet(t, fleetFile, `"/root/.ssh/authorized_keys" = "pi/authorized_keys"`, `"/root/.ssh/authorized_keys" = "pi/authorized_keys"
      "/etc/nginx/conf.d/broken.conf" = "pi/broken.conf"`)
	img3, _ := buildPiCard(t, fleetFile)
	start = time.Now()
	if r := drover(env, "rollout", "start", "pi"); r.code == 0 || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("rollout start of an image whose nginx fails: exit %d, want rolled back\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	t.Logf("image 3 (nginx fails): rollout start to rolled back %s", time.Since(start).Round(time.Second))
	expectPiBoot(t, ctx, pi, 4, pilab.Boot{Partition: 3, Trial: true, After: pilab.EndReboot})
	expectPiBoot(t, ctx, pi, 5, pilab.Boot{Partition: 2, After: pilab.EndReboot})
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from the Pi") {
		t.Errorf("after the failed trial, the Pi serves %q; want image 1", body)
	}

	// Boots 6 to 8: image 4 hangs at boot; its write is cut by a power cut first (boot 6, slot A),
	// the rerun completes it, and the watchdog resets the hung trial into slot A.
	editFleet(t, fleetFile, `
      "/etc/nginx/conf.d/broken.conf" = "pi/broken.conf"`, `
      "/etc/systemd/system/hang.service" = "pi/hang.service"
      "/var/lib/pi-test/random.bin" = "pi/random.bin"`)
	// Random bytes, so that the write lasts long enough on the device for the test to cut the
	// power in the middle of it.
	noise := make([]byte, 16<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(fleetDir, "pi", "random.bin"), string(noise))
	writeFile(t, filepath.Join(fleetDir, "pi", "hang.service"), "[Unit]\nDescription=hang this boot (TestE2EPiAB)\nDefaultDependencies=no\n"+
		// Early in the boot, before sshd, but after the watchdog's driver is loaded (the image
		// loads it first thing, and systemd arms it at once: boot 1 checked that).
		"After=local-fs.target systemd-modules-load.service\nBefore=sysinit.target ssh.service\n\n[Service]\nType=oneshot\n"+
		// A panic that does not reboot (panic=10 on the card's command line would): the kernel
		// stops and nothing pets the watchdog.
		"ExecStart=/bin/sh -c 'echo 0 > /proc/sys/kernel/panic; echo c > /proc/sysrq-trigger'\n\n[Install]\nWantedBy=sysinit.target\n")
	editFleet(t, fleetFile, `run = ["systemctl enable nginx"]`, `run = ["systemctl enable nginx hang"]`)
	img4, _ := buildPiCard(t, fleetFile)
	// The index of the running slot (about 3 MB) and then 6 MiB of the blocks.
	cutWrite(t, ctx, pi, sshTo, 9<<20, func() result { return drover(env, "rollout", "start", "pi") })
	expectPiBoot(t, ctx, pi, 6, pilab.Boot{Partition: 2, After: pilab.EndPowerCut})
	sshTo.dial(ctx).Close() // the Pi is up again: run the command again, as a person would
	start = time.Now()
	if r := drover(env, "rollout", "start", "pi"); r.code == 0 || !strings.Contains(r.stderr, "came back on its committed slot") {
		t.Fatalf("rollout start of an image that hangs, after the power cut: exit %d, want rolled back after the fallback\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	t.Logf("image 4 (hangs): rollout start after the power cut to rolled back %s", time.Since(start).Round(time.Second))
	expectPiBoot(t, ctx, pi, 7, pilab.Boot{Partition: 3, Trial: true, After: pilab.EndReboot})
	if b := waitPiEnd(t, ctx, pi, 7); b.End != pilab.EndWatchdog {
		t.Errorf("boot 7 ended %s, want the watchdog's reset", b.End)
	}
	expectPiBoot(t, ctx, pi, 8, pilab.Boot{Partition: 2, After: pilab.EndWatchdog})

	c = sshTo.dial(ctx)
	sshTo.expect(c, "findmnt -no SOURCE /; cat /data/keep.txt", "/dev/vda5\nkept")
	c.Close()
	if body := piHTTPGet(t, ctx, "http://"+piLabHTTP+"/"); !strings.Contains(body, "hello from the Pi") {
		t.Errorf("after the hung trial, the Pi serves %q; want image 1", body)
	}
	st := drover(env, "--output", "json", "rollout", "history", "pi")
	if st.code != 0 {
		t.Fatalf("rollout history: exit %d\n%s", st.code, st.stderr)
	}
	var recs []abRolloutJSON
	if err := json.Unmarshal([]byte(st.stdout), &recs); err != nil {
		t.Fatalf("rollout history --output json: %v\n%s", err, st.stdout)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.State+" "+r.Image.Identity)
	}
	want := []string{"rolled-back " + img4.Identity, "rolled-back " + img3.Identity, "rolled-back " + img2.Identity}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history, newest first:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("whole test: %s", time.Since(began).Round(time.Second))
}
