package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/hostcheck"
	"github.com/drover-dev/drover/internal/qemuproc"
)

// errForward is how start reports that qemu could not bind a host forward,
// so Launch can try another address.
var errForward = errors.New("host forward unavailable")

// launchTimeout bounds qemu's own start (not the guest's boot).
const launchTimeout = time.Minute

// killTimeout is how long a VM gets to exit after SIGTERM, and then after
// SIGKILL.
const killTimeout = 5 * time.Second

// imageFormat tells qcow2 from raw by the qcow2 magic, which is cheaper than
// asking qemu-img and cannot be fooled by a raw disk's content at offset 0
// (a partition table starts there).
func imageFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("qemu: image: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil {
		return "", fmt.Errorf("qemu: image %s: %w", path, err)
	}
	if bytes.Equal(magic, []byte("QFI\xfb")) {
		return "qcow2", nil
	}
	return "raw", nil
}

// createOverlay makes the instance's disk: a qcow2 file whose reads fall
// through to the shared image, so the image itself is never written.
func createOverlay(ctx context.Context, dir string, img imageRef) error {
	overlay := filepath.Join(dir, overlayFile)
	os.Remove(overlay) // left by a launch that died half way
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2",
		"-F", img.Format, "-b", img.Path, overlay).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu: overlay of %s: %w: %s", img.Path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// args is qemu's command line for an instance. Paths are absolute, except
// the QMP socket's when it is too long for a sockaddr (108 bytes): then qemu
// binds it relative to its working directory, the instance directory.
func (p *Provider) args(r *record, dir, accel string) []string {
	// Commas separate qemu's suboptions; a comma in a value is doubled.
	esc := func(path string) string { return strings.ReplaceAll(path, ",", ",,") }
	qmp := filepath.Join(dir, monitorFile)
	if len(qmp) >= 100 {
		qmp = monitorFile
	}
	netdev := "user,id=n0"
	if p.cfg.Isolate {
		netdev += ",restrict=on"
	}
	for _, port := range r.Ports {
		netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-:%d", r.Address, port, port)
	}
	a := []string{
		"-name", "guest=" + r.ID,
		"-accel", accel,
		"-m", strconv.Itoa(p.cfg.Memory),
		"-smp", strconv.Itoa(p.cfg.CPUs),
		"-display", "none", "-nodefaults", "-no-user-config",
		"-drive", "file=" + esc(filepath.Join(dir, overlayFile)) + ",format=qcow2,if=virtio",
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
		"-serial", "file:" + filepath.Join(dir, consoleFile),
		"-qmp", "unix:" + esc(qmp) + ",server=on,wait=off",
		"-pidfile", filepath.Join(dir, pidFile),
		"-daemonize",
	}
	a = append(a, p.segmentArgs(r.Segment)...)
	a = append(a, hostcheck.CPUArgs(accel)...)
	if p.cfg.Firmware == "uefi" {
		a = append(a, "-bios", p.cfg.OVMF)
	}
	if fi, err := os.Stat(filepath.Join(dir, userFile)); err == nil && fi.Size() > 0 {
		a = append(a, "-fw_cfg", "name=opt/drover/user-data,file="+esc(filepath.Join(dir, userFile)))
	}
	// The mark tells drover-boot it runs in the lab, where fw_cfg is the only user-data source: it
	// must not ask a cloud metadata address, which user-mode networking would route off this host.
	a = append(a, "-fw_cfg", "name=opt/drover/lab,string=1")
	return a
}

// start runs qemu for r and returns the VM's PID. qemu daemonizes itself
// (qemuproc.Start), so the VM outlives drover; a host forward qemu could not
// bind is errForward, so Launch can try another address.
func (p *Provider) start(ctx context.Context, r *record, accel string) (int, error) {
	dir := p.instanceDir(r.ID)
	os.Remove(filepath.Join(dir, monitorFile))
	argv := append([]string{"qemu-system-x86_64"}, p.args(r, dir, accel)...)
	pid, err := qemuproc.Start(ctx, argv, dir, filepath.Join(dir, pidFile), filepath.Join(dir, launchLog), launchTimeout, killTimeout)
	var se *qemuproc.StartError
	switch {
	case err == nil:
		return pid, nil
	case errors.As(err, &se) && strings.Contains(se.Log, "host forwarding rule"):
		return 0, fmt.Errorf("qemu: starting %s on %s: %w: %s", r.ID, r.Address, errForward, se.Log)
	default:
		return 0, fmt.Errorf("qemu: starting %s: %w", r.ID, err)
	}
}

func readPID(path string) (int, error) {
	pid, err := qemuproc.ReadPID(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("qemu: %w", err)
	}
	return pid, err
}

// running reports whether pid is the live qemu of dir (its command line names dir's pid file).
func running(pid int, dir string) bool { return qemuproc.Running(pid, filepath.Join(dir, pidFile)) }

// kill stops the qemu of dir (SIGTERM, then SIGKILL) and waits until it is gone.
func kill(pid int, dir string) error {
	if err := qemuproc.Kill(pid, filepath.Join(dir, pidFile), killTimeout); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}
