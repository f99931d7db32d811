package hostcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// probeExitCode is what qemu exits with when the probe's guest runs: the
// guest writes 1 to isa-debug-exit, which exits with (1<<1)|1.
const probeExitCode = 3

// bootSector is a BIOS boot sector that proves guest code ran: mov al,1;
// out 0xf4,al (isa-debug-exit); then cli; hlt; jmp back to hlt, so that if
// the exit device were missing the guest would stop instead of running off
// into zeros. 0x55 0xAA at 510 makes SeaBIOS boot it.
func bootSector() []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xB0, 0x01, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFD})
	b[510], b[511] = 0x55, 0xAA
	return b
}

// ProbeError is why a qemu boot probe did not succeed. Hung tells a guest
// that never finished (the KVM failure seen on nested hosts) from qemu
// refusing to start, so callers can word the fallback to TCG.
type ProbeError struct {
	Accel    string
	Hung     bool
	ExitCode int    // qemu's exit status; -1 when it did not exit by itself
	Stderr   string // the start of qemu's stderr
	Err      error
}

func (e *ProbeError) Error() string {
	if e.Hung {
		return fmt.Sprintf("hostcheck: qemu -accel %s: guest did not finish: %v", e.Accel, e.Err)
	}
	msg := fmt.Sprintf("hostcheck: qemu -accel %s: exit status %d, want %d", e.Accel, e.ExitCode, probeExitCode)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ProbeError) Unwrap() error { return e.Err }

// ProbeAccel boots a one-sector guest under qemu-system-x86_64 (found in
// $PATH) with the given accelerator ("kvm" or "tcg") and returns nil once
// the guest has run. A present /dev/kvm is not proof that KVM runs guests
// (it has hung on nested hosts), so the qemu provider calls this to choose
// between KVM and TCG. The probe, and every process qemu started, is killed
// after timeout (zero means DefaultProbeTimeout); failures are *ProbeError.
func ProbeAccel(ctx context.Context, accel string, timeout time.Duration) error {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return fmt.Errorf("hostcheck: probing %s: %w", accel, err)
	}
	return probeAccel(ctx, qemu, accel, timeout)
}

// probeAccel is ProbeAccel with the qemu binary given, so doctor can use the
// binary its own PATH lookup found.
func probeAccel(ctx context.Context, qemu, accel string, timeout time.Duration) error {
	if accel == "" || strings.ContainsAny(accel, ", \t\n") {
		return fmt.Errorf("hostcheck: invalid accelerator %q", accel)
	}
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	img, err := os.CreateTemp("", "drover-probe-*.img")
	if err != nil {
		return fmt.Errorf("hostcheck: probe image: %w", err)
	}
	defer os.Remove(img.Name())
	_, werr := img.Write(bootSector())
	if err := errors.Join(werr, img.Close()); err != nil {
		return fmt.Errorf("hostcheck: probe image: %w", err)
	}

	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append([]string{"-machine", "pc", "-accel", accel}, CPUArgs(accel)...)
	cmd := exec.CommandContext(pctx, qemu, append(args,
		"-display", "none", "-nodefaults", "-no-reboot", "-m", "16",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file="+img.Name()+",format=raw,if=ide")...)
	stderr := &capBuffer{max: 1024}
	cmd.Stderr = stderr
	// Own process group, so a hung qemu and anything it spawned are killed
	// together; Pdeathsig so it does not outlive a killed drover.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second

	runErr := cmd.Run()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == probeExitCode {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("hostcheck: probing %s: %w", accel, context.Cause(ctx))
	}
	perr := &ProbeError{Accel: accel, ExitCode: -1, Stderr: oneLine(stderr.String()), Err: runErr}
	if pctx.Err() != nil {
		perr.Hung = true
		perr.Err = fmt.Errorf("killed after %v: %w", timeout, pctx.Err())
		return perr
	}
	if cmd.ProcessState != nil {
		perr.ExitCode = cmd.ProcessState.ExitCode()
	}
	return perr
}

// CPUArgs are the -cpu arguments drover's VMs get under accel, and so the probe's: a probe that
// passes with another CPU model proves nothing (on nested hosts, KVM runs qemu's default CPU but
// aborts on -cpu host, failing to set MSR 0x10a).
func CPUArgs(accel string) []string {
	if accel == "kvm" {
		return []string{"-cpu", "host"}
	}
	return nil
}

// capBuffer keeps the first max bytes written to it, so a chatty qemu
// cannot grow memory without bound.
type capBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capBuffer) String() string { return c.buf.String() }

// oneLine joins the non-blank lines of s with "; ", so qemu's messages fit
// in a Detail or an error on one line.
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// checkKVM warns, never fails: without KVM drover still boots under TCG,
// only slower. It runs a real guest because a present /dev/kvm has hung.
func checkKVM(ctx context.Context, o Options) Result {
	const fallback = "drover will use TCG (slower)"
	if _, err := os.Stat(o.KVMDevice); err != nil {
		return Result{
			Status: StatusWarn,
			Detail: fmt.Sprintf("no %s: %s", o.KVMDevice, fallback),
			Fix:    "enable hardware virtualization (VT-x/AMD-V in the firmware, or nested virtualization for a VM) and load kvm_intel or kvm_amd",
		}
	}
	qemu, ok := lookPath("qemu-system-x86_64", o.PATH)
	if !ok {
		return Result{
			Status:   StatusWarn,
			Detail:   fmt.Sprintf("%s present, but qemu-system-x86_64 is not installed to try it", o.KVMDevice),
			Fix:      installFix("qemu-system-x86"),
			Packages: []string{"qemu-system-x86"},
		}
	}
	start := time.Now()
	err := probeAccel(ctx, qemu, "kvm", o.ProbeTimeout)
	if err == nil {
		return Result{Status: StatusOK, Detail: fmt.Sprintf("%s ran a guest in %v", o.KVMDevice, time.Since(start).Round(time.Millisecond))}
	}
	var pe *ProbeError
	switch {
	case errors.As(err, &pe) && pe.Hung:
		return Result{
			Status: StatusWarn,
			Detail: fmt.Sprintf("KVM hangs: %s (a guest did not finish in %v)", fallback, o.ProbeTimeout),
			Fix:    "nothing needed, TCG works; for KVM check the host's nested virtualization settings",
		}
	case strings.Contains(strings.ToLower(err.Error()), "permission denied"):
		return Result{
			Status: StatusWarn,
			Detail: fmt.Sprintf("%s is not accessible: %s (%v)", o.KVMDevice, fallback, err),
			Fix:    "add your user to the kvm group (adduser $USER kvm) and log in again",
		}
	default:
		return Result{
			Status: StatusWarn,
			Detail: fmt.Sprintf("KVM does not run guests: %s (%v)", fallback, err),
			Fix:    "nothing needed, TCG works; for KVM check that kvm_intel or kvm_amd is loaded and virtualization is enabled",
		}
	}
}

// checkTCG fails when qemu cannot boot a guest even in software: then the
// local lab cannot run at all.
func checkTCG(ctx context.Context, o Options) Result {
	qemu, ok := lookPath("qemu-system-x86_64", o.PATH)
	if !ok {
		return Result{
			Status:   StatusFail,
			Detail:   "qemu-system-x86_64 not found, so no guest can boot",
			Fix:      installFix("qemu-system-x86"),
			Packages: []string{"qemu-system-x86"},
		}
	}
	start := time.Now()
	if err := probeAccel(ctx, qemu, "tcg", o.ProbeTimeout); err != nil {
		return Result{
			Status:   StatusFail,
			Detail:   fmt.Sprintf("qemu cannot boot a guest under TCG: %v", err),
			Fix:      "apt-get install --reinstall qemu-system-x86 seabios",
			Packages: []string{"qemu-system-x86", "seabios"},
		}
	}
	return Result{Status: StatusOK, Detail: fmt.Sprintf("%s ran a guest in %v", qemu, time.Since(start).Round(time.Millisecond))}
}
