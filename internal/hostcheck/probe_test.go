package hostcheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBootSector(t *testing.T) {
	b := bootSector()
	if len(b) != 512 || b[510] != 0x55 || b[511] != 0xAA {
		t.Fatalf("bad boot sector: len %d, signature % x", len(b), b[510:])
	}
	if want := []byte{0xB0, 0x01, 0xE6, 0xF4}; string(b[:4]) != string(want) {
		t.Fatalf("code = % x, want mov al,1; out 0xf4,al", b[:4])
	}
}

// kvmOptions points checkKVM at a fake /dev/kvm and a fake qemu running script.
func kvmOptions(t *testing.T, script string) Options {
	t.Helper()
	return Options{
		PATH:         fakeBins(t, script, "qemu-system-x86_64"),
		KVMDevice:    writeFile(t, t.TempDir(), "kvm", "", 0o644),
		ProbeTimeout: 500 * time.Millisecond,
	}.withDefaults()
}

func TestCheckKVM(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		status       Status
		detailPart   string
		fixPart      string
	}{
		{"runs", "exit 3", StatusOK, "ran a guest", ""},
		{"hangs", "exec sleep 60", StatusWarn, "KVM hangs: drover will use TCG (slower)", "TCG works"},
		{"refused", "echo 'Could not access KVM kernel module: No such file or directory' >&2; exit 1", StatusWarn, "Could not access KVM", "kvm_intel"},
		{"denied", "echo 'Could not access KVM kernel module: Permission denied' >&2; exit 1", StatusWarn, "not accessible", "kvm group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkKVM(context.Background(), kvmOptions(t, tc.script))
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.detailPart) || !strings.Contains(r.Fix, tc.fixPart) {
				t.Fatalf("got %+v, want %s mentioning %q, fix mentioning %q", r, tc.status, tc.detailPart, tc.fixPart)
			}
		})
	}
}

func TestCheckKVMNoQemu(t *testing.T) {
	o := Options{PATH: t.TempDir(), KVMDevice: writeFile(t, t.TempDir(), "kvm", "", 0o644)}.withDefaults()
	r := checkKVM(context.Background(), o)
	if r.Status != StatusWarn || len(r.Packages) != 1 || r.Packages[0] != "qemu-system-x86" {
		t.Fatalf("got %+v, want a warning that installs qemu-system-x86", r)
	}
}

// TestProbeKillsProcessGroup checks that a hung probe takes down what qemu
// started too, not only qemu itself.
func TestProbeKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	bins := fakeBins(t, "sleep 60 & echo $! > "+pidFile+"; wait", "qemu-system-x86_64")
	start := time.Now()
	err := probeAccel(context.Background(), filepath.Join(bins, "qemu-system-x86_64"), "kvm", 300*time.Millisecond)
	var pe *ProbeError
	if !errors.As(err, &pe) || !pe.Hung || pe.Accel != "kvm" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a hung *ProbeError wrapping the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("probe took %v after a 300ms limit", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the fake qemu still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie (killed, not yet reaped by an
// init that does not reap) counts as dead.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestProbeParentCanceled(t *testing.T) {
	bins := fakeBins(t, "exec sleep 60", "qemu-system-x86_64")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := probeAccel(ctx, filepath.Join(bins, "qemu-system-x86_64"), "tcg", time.Minute)
	var pe *ProbeError
	if err == nil || errors.As(err, &pe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline, not a hung probe", err)
	}
}

func TestProbeAccelInvalid(t *testing.T) {
	for _, accel := range []string{"", "kvm,thread=multi", "kvm tcg"} {
		if err := probeAccel(context.Background(), "/nonexistent", accel, time.Second); err == nil || !strings.HasPrefix(err.Error(), "hostcheck: ") {
			t.Errorf("accel %q: err = %v", accel, err)
		}
	}
}

func TestCheckTCGFails(t *testing.T) {
	o := Options{PATH: fakeBins(t, "echo 'qemu: could not load PC BIOS' >&2; exit 1", "qemu-system-x86_64")}.withDefaults()
	r := checkTCG(context.Background(), o)
	if r.Status != StatusFail || !strings.Contains(r.Detail, "could not load PC BIOS") || !strings.Contains(r.Detail, "exit status 1") {
		t.Fatalf("got %+v", r)
	}
}

func needQemu(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): the real probe needs it")
	}
}

// TestProbeAccelTCGReal boots the probe guest with the real qemu under TCG.
func TestProbeAccelTCGReal(t *testing.T) {
	needQemu(t)
	start := time.Now()
	if err := ProbeAccel(context.Background(), "tcg", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("TCG probe took %v", time.Since(start))
}

// TestProbeAccelKVMReal checks the real KVM probe answers, either way, well
// within its limit; without /dev/kvm it must fail without hanging.
func TestProbeAccelKVMReal(t *testing.T) {
	needQemu(t)
	err := ProbeAccel(context.Background(), "kvm", 10*time.Second)
	t.Logf("KVM probe: %v", err)
	if _, statErr := os.Stat("/dev/kvm"); statErr != nil {
		var pe *ProbeError
		if !errors.As(err, &pe) || pe.Hung || pe.ExitCode == probeExitCode || pe.Stderr == "" {
			t.Fatalf("without /dev/kvm: err = %#v, want qemu refusing with a message", err)
		}
	}
}
