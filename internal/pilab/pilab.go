// Package pilab is the lab's Raspberry Pi: a card image made by the "rpi" builder, booted again and
// again on qemu's generic arm64 machine (-M virt, TCG) the way the Pi's firmware boots it. qemu
// cannot run the Pi's GPU firmware, so the launcher plays its part before every boot: it reads
// autoboot.txt off partition 1 and the chosen partition's config.txt, with the one-time trial flag
// ("tryboot") as the firmware has it, and starts qemu with the kernel, initramfs and cmdline.txt
// of that partition. Every guest reboot, watchdog reset or power cut ends that qemu (-no-reboot)
// and the launcher boots the card again, as the firmware's loop would, until it is stopped.
//
// The card is the VM's disk (virtio) and is written in place: what the guest writes survives its
// reboots, as on an SD card. The firmware's mailbox, through which a guest arms a trial boot on
// real hardware (/dev/vcio, tag 0x00038064), is stood in for by a virtio-serial port named
// org.drover.tryboot: a guest that writes the line "tryboot" to /dev/virtio-ports/org.drover.tryboot
// arms a trial of the next boot only. As on the Pi, the flag survives a reboot or a watchdog reset
// and is lost in a power cut. The VM has a watchdog (an i6300esb, reset on expiry) for the image's
// systemd to pet, a hardware random number generator as the Pi has, and user-mode networking with
// the guest's TCP ports forwarded to host addresses and nothing else reachable from the guest.
//
// A Pi is safe for concurrent use. Every qemu it starts is its child, killed by PID on Stop and
// sent SIGKILL by the kernel should the process that started it die first.
package pilab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TrybootPort is the name of the virtio-serial port that stands in for the firmware's mailbox.
const TrybootPort = "org.drover.tryboot"

// Config says what Pi to run.
type Config struct {
	// Card is the SD card image (raw), used in place as the VM's disk. Nothing else may open it
	// while the Pi runs.
	Card string
	// Dir holds what the launcher keeps: console.log (every boot's serial console, each after a
	// "pilab: boot N" line), boots.json (Boots), each boot's mailbox port output, qemu's log, the
	// kernel and initramfs of the current boot, qemu's monitor socket. Created if missing.
	Dir string
	// Forwards maps a guest TCP port to the host address ("127.0.124.2:22") qemu listens on for it.
	Forwards map[int]string
	// MemoryMiB (default 1024), CPUs (default 1) and CPU (default "cortex-a72", the Pi 4's core).
	MemoryMiB int
	CPUs      int
	CPU       string
	// Qemu is the qemu binary; default "qemu-system-aarch64".
	Qemu string
	// Logger gets a line per boot and per end of boot; default slog.Default().
	Logger *slog.Logger
}

// End is why a boot ended.
type End string

const (
	EndPowerOn  End = "power-on"  // not an end: Boot.After of a boot that follows power coming on
	EndReboot   End = "reboot"    // the guest rebooted
	EndWatchdog End = "watchdog"  // the watchdog expired and reset the board
	EndPowerCut End = "power-cut" // PowerCut: qemu killed with SIGKILL
	EndPoweroff End = "poweroff"  // the guest powered off; the Pi stays off until PowerOn
	EndStopped  End = "stopped"   // Stop
	EndFailed   End = "failed"    // qemu exited on its own, not through the guest (see qemu.log)
)

// Boot is one boot of the card.
type Boot struct {
	N         int    `json:"n"`         // 1 for the first
	Partition int    `json:"partition"` // the boot partition the firmware chose
	Trial     bool   `json:"trial"`     // the one-time trial flag was set (and is now consumed)
	After     End    `json:"after"`     // why the boot before it ended, or power-on
	Kernel    string `json:"kernel"`    // files of the boot partition
	Initramfs string `json:"initramfs"`
	Cmdline   string `json:"cmdline"` // as given to the kernel: cmdline.txt and the virt machine's console
	PID       int    `json:"pid"`     // qemu's
	// ArmedTryboot says the guest wrote "tryboot" to the mailbox port during this boot.
	ArmedTryboot bool      `json:"armed_tryboot"`
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended,omitzero"`
	End          End       `json:"end,omitempty"` // "" while it runs
	// ConsoleStart and ConsoleEnd delimit this boot's console in console.log (ConsoleEnd 0 while
	// it runs).
	ConsoleStart int64 `json:"console_start"`
	ConsoleEnd   int64 `json:"console_end,omitempty"`
}

// Pi is an emulated Pi, running its firmware's loop in a goroutine of its own.
type Pi struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // canceled by Stop
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has ended
	fileMu sync.Mutex    // held while boots.json is written

	mu       sync.Mutex
	boots    []Boot
	changed  chan struct{} // closed and replaced at every change of the fields below
	tryboot  bool          // the one-time trial flag, for the next boot
	proc     *os.Process   // the running qemu, nil between boots
	cut      bool          // the running qemu is being killed by PowerCut
	restore  bool          // ...and power comes back at once
	off      bool          // powered off: waiting for PowerOn or Stop
	stopping bool
	err      error // why the loop ended other than by Stop
}

// Start checks the card and the tools and starts the firmware's loop; it returns once the first
// boot's qemu runs, or with what kept it from starting (the loop has then ended; Stop is still
// due). ctx bounds only that wait; the Pi runs until Stop.
func Start(ctx context.Context, cfg Config) (*Pi, error) {
	if cfg.Card == "" || cfg.Dir == "" {
		return nil, errors.New("pilab: config: Card and Dir are required")
	}
	if _, err := os.Stat(cfg.Card); err != nil {
		return nil, fmt.Errorf("pilab: card: %w", err)
	}
	cfg.MemoryMiB = cmp(cfg.MemoryMiB, 1024)
	cfg.CPUs = cmp(cfg.CPUs, 1)
	cfg.CPU = cmpStr(cfg.CPU, "cortex-a72")
	cfg.Qemu = cmpStr(cfg.Qemu, "qemu-system-aarch64")
	for _, tool := range []string{cfg.Qemu, "mtype", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("pilab: %s: %w (apt-get install qemu-system-arm mtools)", tool, err)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pilab: %w", err)
	}
	p := &Pi{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), changed: make(chan struct{})}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.loop()
	if _, err := p.WaitBoot(ctx, 1); err != nil {
		return p, err
	}
	return p, nil
}

func cmp(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func cmpStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// loop is the firmware's: boot, wait for the end, boot again. It runs on one locked OS thread,
// because the kernel sends qemu's parent-death signal when the thread that started it ends.
func (p *Pi) loop() {
	runtime.LockOSThread()
	defer close(p.done)
	after := EndPowerOn
	for {
		p.mu.Lock()
		for p.off && !p.stopping {
			ch := p.changed
			p.mu.Unlock()
			<-ch
			p.mu.Lock()
		}
		if p.stopping {
			p.mu.Unlock()
			return
		}
		trial := p.tryboot
		p.tryboot = false // the firmware clears the flag as it uses it
		p.mu.Unlock()

		end, err := p.boot(after, trial)
		if err != nil {
			stopping := false
			p.update(func() {
				if stopping = p.stopping; !stopping {
					p.err = err
				}
			})
			if stopping {
				return
			}
			p.log.Error("pilab: the emulated Pi stopped", "err", err)
			return
		}
		switch end {
		case EndStopped:
			return
		case EndPoweroff:
			p.update(func() { p.off = true })
		case EndPowerCut:
			p.update(func() { p.off = !p.restore })
		}
		after = end
		if p.isOff() {
			after = EndPowerOn
		}
	}
}

func (p *Pi) isOff() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.off
}

// update changes the Pi's state under its lock, wakes whoever waits for a change and rewrites
// boots.json.
func (p *Pi) update(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	// One writer at a time, each writing the state as it is then: two updates at once (Stop and
	// the loop recording the stopped boot) used to write the same temporary file together, and
	// boots.json could be left empty.
	p.fileMu.Lock()
	defer p.fileMu.Unlock()
	p.mu.Lock()
	b, _ := json.MarshalIndent(p.boots, "", "  ")
	p.mu.Unlock()
	tmp := filepath.Join(p.cfg.Dir, ".boots.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
		os.Rename(tmp, filepath.Join(p.cfg.Dir, "boots.json"))
	}
}

// Boots returns every boot so far, the first first.
func (p *Pi) Boots() []Boot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Boot(nil), p.boots...)
}

// Err is why the firmware's loop ended other than by Stop (the card could not be booted, qemu
// failed), or nil.
func (p *Pi) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// wait calls cond under the lock until it reports done, the loop ends or ctx ends.
func (p *Pi) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		p.mu.Lock()
		ok, ch, err, stopping := cond(), p.changed, p.err, p.stopping
		p.mu.Unlock()
		switch {
		case ok:
			return nil
		case err != nil:
			return fmt.Errorf("pilab: waiting for %s: %w", what, err)
		case stopping:
			return fmt.Errorf("pilab: waiting for %s: the Pi was stopped", what)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("pilab: waiting for %s: %w", what, context.Cause(ctx))
		}
	}
}

// WaitBoot waits until boot n (1 for the first) has started and returns it.
func (p *Pi) WaitBoot(ctx context.Context, n int) (Boot, error) {
	var b Boot
	err := p.wait(ctx, fmt.Sprintf("boot %d", n), func() bool {
		if len(p.boots) >= n {
			b = p.boots[n-1]
			return true
		}
		return false
	})
	return b, err
}

// WaitEnd waits until boot n has ended and returns it.
func (p *Pi) WaitEnd(ctx context.Context, n int) (Boot, error) {
	var b Boot
	err := p.wait(ctx, fmt.Sprintf("the end of boot %d", n), func() bool {
		if len(p.boots) >= n && p.boots[n-1].End != "" {
			b = p.boots[n-1]
			return true
		}
		return false
	})
	return b, err
}

// ConsolePath is the file every boot's serial console is appended to.
func (p *Pi) ConsolePath() string { return filepath.Join(p.cfg.Dir, "console.log") }

// Console returns what boot n has written to its serial console so far.
func (p *Pi) Console(n int) (string, error) {
	p.mu.Lock()
	if n < 1 || n > len(p.boots) {
		p.mu.Unlock()
		return "", fmt.Errorf("pilab: there is no boot %d yet", n)
	}
	b := p.boots[n-1]
	p.mu.Unlock()
	f, err := os.Open(p.ConsolePath())
	if err != nil {
		return "", fmt.Errorf("pilab: %w", err)
	}
	defer f.Close()
	var r io.Reader = io.NewSectionReader(f, b.ConsoleStart, 1<<62)
	if b.End != "" {
		r = io.NewSectionReader(f, b.ConsoleStart, b.ConsoleEnd-b.ConsoleStart)
	}
	out, err := io.ReadAll(r)
	return string(out), err
}

// WaitConsole waits until boot n's console holds text. It fails as soon as boot n has ended
// without it, naming how it ended.
func (p *Pi) WaitConsole(ctx context.Context, n int, text string) error {
	if _, err := p.WaitBoot(ctx, n); err != nil {
		return err
	}
	for {
		p.mu.Lock()
		b := p.boots[n-1]
		p.mu.Unlock()
		out, err := p.Console(n)
		if err != nil {
			return err
		}
		if strings.Contains(out, text) {
			return nil
		}
		if b.End != "" {
			return fmt.Errorf("pilab: boot %d ended (%s) without %q on its console", n, b.End, text)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pilab: waiting for %q on the console of boot %d: %w", text, n, context.Cause(ctx))
		case <-time.After(time.Second):
		}
	}
}

// PowerCut kills the running qemu with SIGKILL, as pulling the power: what the guest had not yet
// written to the card is lost, and so is an armed trial flag. With restore the power comes back at
// once and the firmware boots again; without it the Pi stays off until PowerOn. It returns once the
// cut boot is recorded as ended, and fails when the Pi is off already.
func (p *Pi) PowerCut(ctx context.Context, restore bool) error {
	p.mu.Lock()
	if p.proc == nil || p.stopping {
		p.mu.Unlock()
		return errors.New("pilab: no power to cut: the Pi is off")
	}
	n := len(p.boots)
	p.cut, p.restore = true, restore
	err := p.proc.Signal(syscall.SIGKILL)
	p.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pilab: cutting the power: %w", err)
	}
	_, err = p.WaitEnd(ctx, n)
	return err
}

// PowerOn boots a Pi that is off (after a poweroff or a PowerCut without restore); a Pi that runs
// is left alone.
func (p *Pi) PowerOn() {
	p.update(func() { p.off = false })
}

// Stop kills the running qemu (SIGKILL, by PID) and ends the firmware's loop; it returns once both
// are gone. Safe to call more than once, and after the loop failed.
func (p *Pi) Stop() error {
	p.update(func() {
		p.stopping = true
		if p.proc != nil {
			p.proc.Signal(syscall.SIGKILL)
		}
	})
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-time.After(time.Minute):
		return errors.New("pilab: the firmware's loop did not end within a minute of Stop")
	}
}
