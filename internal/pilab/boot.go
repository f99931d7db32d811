package pilab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dev/drover/internal/qmp"
)

// VirtConsole is the serial console of qemu's virt machine (a PL011), added to every boot's
// command line after cmdline.txt's own consoles (the Pi's ttyS1 and tty0, which the virt machine
// lacks), so it is /dev/console.
const VirtConsole = "console=ttyAMA0"

// firmware is what the firmware chose for a boot.
type firmware struct {
	partition int
	files     BootFiles
	cmdline   string
	kernel    string // copies on the host
	initramfs string
}

// chooseBoot reads the card as the firmware does for a boot with the trial flag set or not, and
// copies the chosen kernel and initramfs into dir.
func chooseBoot(ctx context.Context, card, dir string, trial bool) (firmware, error) {
	off1, err := partitionOffset(card, 1)
	if err != nil {
		return firmware{}, err
	}
	auto := Autoboot{Partition: 1}
	text, err := readFAT(ctx, card, off1, "autoboot.txt")
	switch {
	case err == nil:
		if auto, err = ParseAutoboot(string(text), trial); err != nil {
			return firmware{}, err
		}
	case !strings.Contains(err.Error(), "not found"):
		return firmware{}, err
	}
	fw := firmware{partition: auto.Partition}
	off, err := partitionOffset(card, auto.Partition)
	if err != nil {
		return firmware{}, err
	}
	confName := auto.ConfigFile(trial)
	conf, err := readFAT(ctx, card, off, confName)
	if err != nil {
		return firmware{}, fmt.Errorf("pilab: boot partition %d: %w", auto.Partition, err)
	}
	if fw.files, err = ParseConfig(string(conf), trial); err != nil {
		return firmware{}, fmt.Errorf("pilab: boot partition %d, %s: %w", auto.Partition, confName, err)
	}
	cmdline, err := readFAT(ctx, card, off, fw.files.Cmdline)
	if err != nil {
		return firmware{}, fmt.Errorf("pilab: boot partition %d: %w", auto.Partition, err)
	}
	// The firmware takes the first line of the file as the command line.
	first, _, _ := strings.Cut(string(cmdline), "\n")
	fw.cmdline = strings.TrimSpace(strings.TrimSpace(first) + " " + VirtConsole)
	fw.kernel = filepath.Join(dir, "kernel")
	if err := copyFAT(ctx, card, off, fw.files.Kernel, fw.kernel); err != nil {
		return firmware{}, fmt.Errorf("pilab: boot partition %d: %w", auto.Partition, err)
	}
	if fw.files.Initramfs != "" {
		fw.initramfs = filepath.Join(dir, "initramfs")
		if err := copyFAT(ctx, card, off, fw.files.Initramfs, fw.initramfs); err != nil {
			return firmware{}, fmt.Errorf("pilab: boot partition %d: %w", auto.Partition, err)
		}
	}
	return fw, nil
}

// qemuEscape doubles the commas of a value inside a qemu option list.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// qemuArgs is the command line of one boot.
func (p *Pi) qemuArgs(fw firmware, mailbox, qmpSock string) []string {
	c := p.cfg
	args := []string{c.Qemu, "-nodefaults", "-M", "virt", "-accel", "tcg", "-cpu", c.CPU,
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemoryMiB),
		"-display", "none", "-no-reboot",
		"-kernel", fw.kernel, "-append", fw.cmdline,
		"-drive", "if=none,id=card,format=raw,cache=unsafe,file=" + qemuEscape(c.Card),
		"-device", "virtio-blk-pci,drive=card",
		"-chardev", "file,id=console,append=on,path=" + qemuEscape(p.ConsolePath()),
		"-serial", "chardev:console",
		"-device", "virtio-serial-pci,id=vser",
		"-chardev", "file,id=mailbox,path=" + qemuEscape(mailbox),
		"-device", "virtserialport,bus=vser.0,chardev=mailbox,name=" + TrybootPort,
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-device", "virtio-rng-pci",
		"-qmp", "unix:" + qemuEscape(qmp.SocketArg(qmpSock)) + ",server=on,wait=on",
	}
	if fw.initramfs != "" {
		args = append(args, "-initrd", fw.initramfs)
	}
	// restrict=on: the guest reaches nothing beyond the forwards, as a Pi on a home network reaches
	// no cloud; without it a host that answers at 169.254.169.254 (a cloud VM running the lab) would
	// look like a metadata service to drover-boot. DHCP, from qemu itself, still works.
	netdev := "user,id=net,restrict=on"
	ports := make([]int, 0, len(c.Forwards))
	for port := range c.Forwards {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	for _, port := range ports {
		netdev += fmt.Sprintf(",hostfwd=tcp:%s-:%d", c.Forwards[port], port)
	}
	return append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net")
}

// boot chooses what to boot, runs one qemu until it exits and records the boot; it returns how the
// boot ended. An error means the card cannot be booted or qemu failed on its own: the loop ends.
func (p *Pi) boot(after End, trial bool) (End, error) {
	dir := filepath.Join(p.cfg.Dir, "boot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pilab: %w", err)
	}
	fw, err := chooseBoot(p.ctx, p.cfg.Card, dir, trial)
	if err != nil {
		return "", err
	}
	n := len(p.Boots()) + 1
	mailbox := filepath.Join(p.cfg.Dir, fmt.Sprintf("mailbox-%d.txt", n))
	qmpSock := filepath.Join(p.cfg.Dir, "qmp.sock")
	os.Remove(qmpSock)
	start, err := appendMarker(p.ConsolePath(), fmt.Sprintf("pilab: boot %d: partition %d%s, after %s\n",
		n, fw.partition, map[bool]string{true: " (trial)"}[trial], after))
	if err != nil {
		return "", err
	}
	qlog, err := os.OpenFile(filepath.Join(p.cfg.Dir, "qemu.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("pilab: %w", err)
	}
	defer qlog.Close()
	argv := p.qemuArgs(fw, mailbox, qmpSock)
	fmt.Fprintf(qlog, "pilab: boot %d: %s\n", n, strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.cfg.Dir // the monitor socket may be named relative to it (qmp.SocketArg)
	cmd.Stdout, cmd.Stderr = qlog, qlog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("pilab: starting qemu: %w", err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	b := Boot{N: n, Partition: fw.partition, Trial: trial, After: after, Kernel: fw.files.Kernel,
		Initramfs: fw.files.Initramfs, Cmdline: fw.cmdline, PID: cmd.Process.Pid, Started: time.Now(), ConsoleStart: start}
	p.update(func() {
		p.boots = append(p.boots, b)
		p.proc, p.cut = cmd.Process, false
		if p.stopping {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	})
	p.log.Info("pilab: boot", "n", n, "partition", fw.partition, "trial", trial, "after", after, "pid", b.PID)

	events := p.watchMonitor(qmpSock, exited)
	<-exited
	ev := <-events
	armed := mailboxArmed(mailbox)
	end := EndFailed
	p.mu.Lock()
	switch {
	case p.stopping:
		end = EndStopped
	case p.cut:
		end = EndPowerCut
	case ev.watchdog:
		end = EndWatchdog
	case ev.shutdown == "guest-reset":
		end = EndReboot
	case ev.shutdown == "guest-shutdown":
		end = EndPoweroff
	}
	p.mu.Unlock()
	consoleEnd := fileSize(p.ConsolePath())
	p.update(func() {
		p.proc = nil
		// The flag survives a reset (a reboot or the watchdog's), not the loss of power.
		p.tryboot = armed && (end == EndReboot || end == EndWatchdog)
		bb := &p.boots[n-1]
		bb.Ended, bb.End, bb.ArmedTryboot, bb.ConsoleEnd = time.Now(), end, armed, consoleEnd
	})
	p.log.Info("pilab: boot ended", "n", n, "end", end, "armed_tryboot", armed)
	if end == EndFailed {
		return end, fmt.Errorf("pilab: qemu of boot %d exited by itself (%v, monitor: %s); see %s",
			n, waitErr, ev.describe(), filepath.Join(p.cfg.Dir, "qemu.log"))
	}
	return end, nil
}

// monitorEvents are what qemu's monitor said before qemu exited.
type monitorEvents struct {
	watchdog bool   // a WATCHDOG event
	shutdown string // the SHUTDOWN event's reason
	err      error  // why the monitor could not be read
}

func (e monitorEvents) describe() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("watchdog %v, shutdown %q", e.watchdog, e.shutdown)
}

// watchMonitor connects to qemu's monitor (qemu waits for it before it starts the VM) and gathers
// its events until qemu exits; the result arrives on the channel after that.
func (p *Pi) watchMonitor(sock string, exited <-chan struct{}) <-chan monitorEvents {
	out := make(chan monitorEvents, 1)
	go func() {
		var ev monitorEvents
		defer func() { out <- ev }()
		var conn *qmp.Conn
		for deadline := time.Now().Add(2 * time.Minute); conn == nil; {
			if _, err := os.Stat(sock); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				conn, ev.err = qmp.Dial(ctx, "pilab", "the emulated Pi", sock)
				cancel()
				if conn != nil {
					break
				}
			}
			if time.Now().After(deadline) {
				ev.err = fmt.Errorf("no monitor socket %s after 2 minutes", sock)
				return
			}
			select {
			case <-exited:
				ev.err = errors.New("qemu exited before its monitor answered")
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		defer conn.Close()
		for {
			e, err := conn.NextEvent(context.Background())
			if err != nil {
				return // qemu exited: its end of the socket closed
			}
			switch e.Name {
			case "WATCHDOG":
				ev.watchdog = true
			case "SHUTDOWN":
				var d struct {
					Reason string `json:"reason"`
				}
				if json.Unmarshal(e.Data, &d) == nil {
					ev.shutdown = d.Reason
				}
			}
		}
	}()
	return out
}

// mailboxArmed reports whether the guest wrote the line "tryboot" to the mailbox port.
func mailboxArmed(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	armed := false
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "tryboot" {
			armed = true
		}
	}
	return armed
}

// appendMarker appends line to the console log and returns the log's length after it.
func appendMarker(path, line string) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("pilab: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		return 0, fmt.Errorf("pilab: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("pilab: %w", err)
	}
	return fi.Size(), nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
