package device

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/internal/abslot/abslottest"
	"github.com/drover-dev/drover/plugins/compute"
)

// testDevice is a card file behind a real sshd: slots a and b hold the same root, a is committed and
// runs; bundle is a root that differs from it by one file.
type testDevice struct {
	srv    *sshd
	fw     abslottest.Firmware
	bundle string
	boot   string // drover-boot's path
}

func newTestDevice(t *testing.T) *testDevice {
	abslottest.RequireTools(t)
	dir := t.TempDir()
	files := map[string]string{"etc/hostname": "pi\n", "usr/share/big": strings.Repeat("x", 3<<20), "boot/config.txt": "arm_64bit=1\n"}
	card := filepath.Join(dir, "card.img")
	abslottest.MakeCard(t, card, abslottest.MakeSlot(t, filepath.Join(dir, "a"), files))
	files["etc/motd"] = "version 2\n"
	bundle := filepath.Join(dir, "bundle")
	abslottest.MakeBundle(t, bundle, abslottest.MakeSlot(t, filepath.Join(dir, "b"), files))
	fw := abslottest.Firmware{Card: card, TrybootPort: filepath.Join(dir, "tryboot"), Cmdline: filepath.Join(dir, "cmdline")}
	fw.Boot(t)
	srv := startSSHD(t, map[string]string{"DROVER_BOOT_DISK": card, "DROVER_BOOT_CMDLINE": fw.Cmdline,
		"DROVER_BOOT_TRYBOOT_PORT": fw.TrybootPort, "DROVER_BOOT_VCIO": filepath.Join(dir, "no-vcio"),
		"DROVER_BOOT_REBOOT_FILE": filepath.Join(dir, "rebooted")})
	return &testDevice{srv: srv, fw: fw, bundle: bundle, boot: buildDroverBoot(t)}
}

func (d *testDevice) config() *Config {
	return &Config{Hosts: []string{d.srv.addr}, User: currentUser(), DroverBoot: d.boot, Key: d.srv.clientPK}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func TestHostKeyPinning(t *testing.T) {
	d := newTestDevice(t)
	state := t.TempDir()
	fp := d.srv.fingerprint(t)

	// First contact without confirmation: refused, the fingerprint printed, nothing pinned.
	p, err := New(d.config(), state, "home", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.SlotStatus(t.Context(), d.srv.addr)
	if !errors.Is(err, ErrUnknownHostKey) || !strings.Contains(err.Error(), fp) {
		t.Fatalf("first contact unconfirmed: %v; want ErrUnknownHostKey naming %s", err, fp)
	}
	pinFile := filepath.Join(state, "device", "home", "host_keys.json")
	if _, err := os.Stat(pinFile); !os.IsNotExist(err) {
		t.Fatalf("an unconfirmed key was pinned: %v", err)
	}
	// Declined: still refused.
	p, _ = New(d.config(), state, "home", Options{Confirm: func(string, string) bool { return false }})
	if _, err := p.SlotStatus(t.Context(), d.srv.addr); !errors.Is(err, ErrUnknownHostKey) {
		t.Fatalf("declined first contact: %v", err)
	}
	// Confirmed: pinned, and the confirmation saw the fingerprint.
	var asked string
	p, _ = New(d.config(), state, "home", Options{Confirm: func(_, f string) bool { asked = f; return true }})
	st, err := p.SlotStatus(t.Context(), d.srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if asked != fp || st.Committed != "a" || st.Booted != "a" || st.Trial {
		t.Fatalf("confirmed %q (want %q), status %+v", asked, fp, st)
	}
	// Pinned: no confirmation needed any more. (The key from key_file this time, relative to the
	// fleet's directory.)
	c := d.config()
	c.Key, c.KeyFile = nil, "client"
	p, err = New(c, state, "home", Options{FleetDir: d.srv.dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SlotStatus(t.Context(), d.srv.addr); err != nil {
		t.Fatalf("pinned host: %v", err)
	}
	// A changed key (the pin no longer matches what the host offers) is refused loudly.
	other := "SHA256:" + strings.Repeat("A", 43)
	data, _ := json.Marshal(map[string]string{d.srv.addr: other})
	if err := os.WriteFile(pinFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = p.SlotStatus(t.Context(), d.srv.addr)
	if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), other) {
		t.Fatalf("changed key: %v; want ErrHostKeyChanged naming both keys", err)
	}

	// A fingerprint in the block needs no confirmation; a wrong one is refused.
	fresh := t.TempDir()
	c = d.config()
	c.HostKeys = map[string]string{d.srv.addr: fp}
	p, _ = New(c, fresh, "home", Options{})
	if _, err := p.SlotStatus(t.Context(), d.srv.addr); err != nil {
		t.Fatalf("fingerprint given in the block: %v", err)
	}
	c.HostKeys = map[string]string{d.srv.addr: other}
	p, _ = New(c, t.TempDir(), "home", Options{})
	if _, err := p.SlotStatus(t.Context(), d.srv.addr); !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("wrong fingerprint in the block: %v", err)
	}
}

// TestUpdateOverSSH writes slot b over SSH (only the blocks that differ), arms its trial, "reboots"
// (the test plays the firmware), commits, and checks what Instances reports at each step.
func TestUpdateOverSSH(t *testing.T) {
	d := newTestDevice(t)
	c := d.config()
	c.HostKeys = map[string]string{d.srv.addr: d.srv.fingerprint(t)}
	p, err := New(c, t.TempDir(), "home", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, host := t.Context(), d.srv.addr
	if _, err := p.WriteSlot(ctx, host, "a", d.bundle); err == nil || !strings.Contains(err.Error(), "running or committed") {
		t.Fatalf("writing the running slot: %v; want the device's refusal", err)
	}
	w, err := p.WriteSlot(ctx, host, "b", d.bundle)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d of %d bytes (%.1f%%), %d blocks, in %v (verify %v)", w.Sent, w.SlotBytes, 100*float64(w.Sent)/float64(w.SlotBytes), w.Blocks, w.Elapsed, w.Verify)
	// A file added shifts what mkfs.ext4 placed after it: a handful of 1 MiB blocks differ, whose
	// 4 KiB chunks are mostly in the running slot and go as references. The figure on a card of the
	// rpi builder is in bench/results.md.
	if w.Blocks == 0 || w.Sent*100 > w.SlotBytes {
		t.Errorf("sent %d blocks, %d of %d bytes, for a one-file change; want some, and at most 1%% of the slot", w.Blocks, w.Sent, w.SlotBytes)
	}
	again, err := p.WriteSlot(ctx, host, "b", d.bundle)
	if err != nil || again.Blocks != 0 {
		t.Fatalf("writing the same bundle again sent %d blocks (%v), want 0", again.Blocks, err)
	}
	if err := p.ArmTrial(ctx, host, "b"); err != nil {
		t.Fatal(err)
	}
	if err := p.Reboot(ctx, host); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.fw.Card), "rebooted")); err != nil {
		t.Fatalf("reboot did not reach the device: %v", err)
	}
	if got := d.fw.Boot(t); got != "b" {
		t.Fatalf("the armed reboot booted %s, want b", got)
	}
	insts, err := p.Instances(ctx, compute.Selector{"running": "true"})
	if err != nil || len(insts) != 1 || insts[0].ID != host+"/b" || insts[0].Labels["committed"] != "false" || insts[0].State != compute.Running {
		t.Fatalf("on trial, running instances %+v (%v); want %s/b, not committed", insts, err, host)
	}
	if err := p.CommitSlot(ctx, host, "b"); err != nil {
		t.Fatal(err)
	}
	if got := d.fw.Boot(t); got != "b" {
		t.Fatalf("after commit, a reboot booted %s, want b", got)
	}
	st, err := p.SlotStatus(ctx, host)
	if err != nil || st.Committed != "b" || st.Trial {
		t.Fatalf("after commit: %+v (%v)", st, err)
	}
	if _, err := p.Launch(ctx, compute.Spec{Token: "x", Name: "pi"}); err == nil {
		t.Fatal("Launch on a device succeeded")
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("KEY FROM FILE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewDefaultConfig(env(map[string]string{"DEVICE_SSH_KEY_FILE": keyFile}))
	if err != nil || !strings.Contains(string(c.Key), "KEY FROM FILE") || c.User != "root" || c.DroverBoot != DefaultDroverBoot {
		t.Fatalf("config %+v, %v", c, err)
	}
	for _, bad := range []Config{
		{User: "root"},
		{Hosts: []string{"pi:99999"}, User: "root"},
		{Hosts: []string{"pi"}, User: "root", HostKeys: map[string]string{"pi": "MD5:aa"}},
		{Hosts: []string{"pi"}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if _, err := New(&Config{Hosts: []string{"pi"}, User: "root"}, t.TempDir(), "home", Options{}); err == nil || !strings.Contains(err.Error(), "DEVICE_SSH_KEY") {
		t.Errorf("no key: %v", err)
	}
}
