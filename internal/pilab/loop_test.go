package pilab

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The firmware's loop is tested against a stand-in for qemu: this test binary run again with
// PILAB_FAKE_QEMU set. It answers on the monitor socket as qemu does, writes the kernel it was
// given and its command line to the console, and then does what the test asks through a command
// file: arm the trial flag through the mailbox port, reboot, be reset by the watchdog, power off,
// or hang until it is killed. The card is a real MBR with FAT partitions, read by mtools.

func TestMain(m *testing.M) {
	if os.Getenv("PILAB_FAKE_QEMU") != "" {
		if err := fakeQemu(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake qemu:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeQemu reads the options the launcher gives qemu and plays a guest.
func fakeQemu(args []string) error {
	opt := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			switch args[i] {
			case "-chardev", "-device":
				opt[args[i]+":"+args[i+1][:strings.IndexByte(args[i+1]+",", ',')]+":"+chardevID(args[i+1])] = args[i+1]
			default:
				opt[args[i]] = args[i+1]
			}
		}
	}
	sock := strings.TrimSuffix(strings.TrimPrefix(opt["-qmp"], "unix:"), ",server=on,wait=on")
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	send := func(s string) { fmt.Fprintln(conn, s) }
	send(`{"QMP": {"version": {}, "capabilities": []}}`)
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "qmp_capabilities") {
		return fmt.Errorf("no qmp_capabilities: %q %v", line, err)
	}
	send(`{"return": {}}`)
	kernel, _ := os.ReadFile(opt["-kernel"])
	console, mailbox := chardevPath(opt, "console"), chardevPath(opt, "mailbox")
	appendFile(console, fmt.Sprintf("fake: kernel %s cmdline %s\n", strings.TrimSpace(string(kernel)), opt["-append"]))
	ctl := filepath.Join(os.Getenv("PILAB_FAKE_QEMU"), "cmd")
	for {
		b, err := os.ReadFile(ctl)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		os.Remove(ctl)
		for _, c := range strings.Fields(string(b)) {
			switch c {
			case "tryboot":
				appendFile(mailbox, "tryboot\n")
			case "reboot":
				send(`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}`)
				return nil
			case "watchdog":
				send(`{"event": "WATCHDOG", "data": {"action": "reset"}}`)
				send(`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}`)
				return nil
			case "poweroff":
				send(`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}`)
				return nil
			case "crash":
				return fmt.Errorf("crashed as asked")
			}
		}
	}
}

func chardevID(opt string) string {
	for _, kv := range strings.Split(opt, ",") {
		if v, ok := strings.CutPrefix(kv, "id="); ok {
			return v
		}
	}
	return ""
}

func chardevPath(opt map[string]string, id string) string {
	for _, kv := range strings.Split(opt["-chardev:file:"+id], ",") {
		if v, ok := strings.CutPrefix(kv, "path="); ok {
			return v
		}
	}
	return ""
}

func appendFile(path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		f.WriteString(s)
		f.Close()
	}
}

// makeCard writes a card with the rpi builder's first three partitions: autoboot.txt on 1, and
// slots A and B on 2 and 3, each with config.txt, cmdline.txt and a "kernel" naming its slot.
func makeCard(t *testing.T, dir string) string {
	t.Helper()
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (apt-get install dosfstools mtools)", tool, err)
		}
	}
	const mib = 1 << 20
	card := filepath.Join(dir, "card.img")
	mbr := make([]byte, sectorSize)
	parts := []struct {
		typ   byte
		files map[string]string
	}{
		{0x0e, map[string]string{"autoboot.txt": "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"}},
		{0x0c, map[string]string{"config.txt": "[pi3]\nkernel=wrong\n[all]\nkernel=vmlinuz-a\ninitramfs initrd.img followkernel\n",
			"vmlinuz-a": "slot-a", "initrd.img": "initrd", "cmdline.txt": "root=PARTUUID=0badcafe-05 rootwait\nignored second line\n"}},
		{0x0c, map[string]string{"config.txt": "kernel=vmlinuz-b\n", "vmlinuz-b": "slot-b", "cmdline.txt": "root=PARTUUID=0badcafe-06\n"}},
	}
	f, err := os.Create(card)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, p := range parts {
		start := int64(1+8*i) * mib
		e := mbr[446+16*i:]
		e[4] = p.typ
		binary.LittleEndian.PutUint32(e[8:], uint32(start/sectorSize))
		binary.LittleEndian.PutUint32(e[12:], 8*mib/sectorSize)
		img := filepath.Join(dir, fmt.Sprintf("p%d.vfat", i+1))
		if out, err := exec.Command("mkfs.vfat", "-C", img, "8192").CombinedOutput(); err != nil {
			t.Fatalf("mkfs.vfat: %v: %s", err, out)
		}
		for name, content := range p.files {
			src := filepath.Join(dir, name)
			os.WriteFile(src, []byte(content), 0o644)
			cmd := exec.Command("mcopy", "-i", img, src, "::/"+name)
			cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mcopy: %v: %s", err, out)
			}
		}
		b, _ := os.ReadFile(img)
		if _, err := f.WriteAt(b, start); err != nil {
			t.Fatal(err)
		}
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	return card
}

// TestLoop runs the firmware's loop through every way a boot ends, on the fake qemu.
func TestLoop(t *testing.T) {
	dir := t.TempDir()
	card := makeCard(t, dir)
	ctlDir := filepath.Join(dir, "ctl")
	os.Mkdir(ctlDir, 0o755)
	fake := filepath.Join(dir, "qemu")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nPILAB_FAKE_QEMU="+ctlDir+" exec "+os.Args[0]+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A long directory, so the monitor socket is named relative to it (qmp.SocketArg).
	labDir := filepath.Join(dir, strings.Repeat("d", 100))
	pi, err := Start(ctx, Config{Card: card, Dir: labDir, Qemu: fake, Forwards: map[int]string{22: "127.0.124.9:2222"}})
	if err != nil {
		t.Fatal(err)
	}
	defer pi.Stop()
	do := func(cmds string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(ctlDir, "cmd"), []byte(cmds), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step := func(n int, want Boot, then string) {
		t.Helper()
		b, err := pi.WaitBoot(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if b.Partition != want.Partition || b.Trial != want.Trial || b.After != want.After || b.Kernel != want.Kernel {
			t.Fatalf("boot %d: partition %d, trial %v, after %s, kernel %s; want %d, %v, %s, %s",
				n, b.Partition, b.Trial, b.After, b.Kernel, want.Partition, want.Trial, want.After, want.Kernel)
		}
		if err := pi.WaitConsole(ctx, n, "fake: kernel slot-"+strings.TrimPrefix(want.Kernel, "vmlinuz-")); err != nil {
			t.Fatal(err)
		}
		if then != "" {
			do(then)
		}
	}
	a := Boot{Partition: 2, Kernel: "vmlinuz-a"}
	with := func(b Boot, after End, trial bool) Boot { b.After, b.Trial = after, trial; return b }
	bSlot := Boot{Partition: 3, Kernel: "vmlinuz-b"}

	step(1, with(a, EndPowerOn, false), "tryboot reboot")
	step(2, with(bSlot, EndReboot, true), "reboot")        // the flag was consumed
	step(3, with(a, EndReboot, false), "tryboot watchdog") // the flag survives a watchdog reset
	step(4, with(bSlot, EndWatchdog, true), "watchdog")    // a hung trial: back on A
	step(5, with(a, EndWatchdog, false), "tryboot")        // armed, then the power is cut
	for b, _ := os.ReadFile(filepath.Join(labDir, "mailbox-5.txt")); string(b) != "tryboot\n"; b, _ = os.ReadFile(filepath.Join(labDir, "mailbox-5.txt")) {
		if ctx.Err() != nil {
			t.Fatal("boot 5 never armed the trial")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := pi.PowerCut(ctx, true); err != nil {
		t.Fatal(err)
	}
	if b := pi.Boots()[4]; b.End != EndPowerCut || !b.ArmedTryboot {
		t.Fatalf("boot 5 ended %s, armed %v; want a power cut with the trial armed", b.End, b.ArmedTryboot)
	}
	step(6, with(a, EndPowerCut, false), "poweroff") // the flag did not survive the cut
	if b, err := pi.WaitEnd(ctx, 6); err != nil || b.End != EndPoweroff {
		t.Fatalf("boot 6: %+v, %v; want a poweroff", b, err)
	}
	if err := pi.PowerCut(ctx, true); err == nil {
		t.Error("PowerCut of a Pi that is off succeeded")
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(pi.Boots()); n != 6 {
		t.Fatalf("a powered-off Pi booted again: %d boots", n)
	}
	pi.PowerOn()
	step(7, with(a, EndPowerOn, false), "")

	boots := pi.Boots()
	for i, want := range []End{EndReboot, EndReboot, EndWatchdog, EndWatchdog, EndPowerCut, EndPoweroff} {
		if boots[i].End != want {
			t.Errorf("boot %d ended %s, want %s", i+1, boots[i].End, want)
		}
	}
	if b := boots[0]; b.Cmdline != "root=PARTUUID=0badcafe-05 rootwait "+VirtConsole || b.Initramfs != "initrd.img" || !b.ArmedTryboot {
		t.Errorf("boot 1: cmdline %q, initramfs %q, armed %v", b.Cmdline, b.Initramfs, b.ArmedTryboot)
	}
	if out, _ := pi.Console(2); !strings.HasPrefix(out, "fake: kernel slot-b cmdline root=PARTUUID=0badcafe-06 "+VirtConsole) {
		t.Errorf("boot 2's console: %q", out)
	}

	pid := boots[6].PID
	if err := pi.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("kill", "-0", fmt.Sprint(pid)).Run(); err == nil {
		t.Errorf("qemu %d still runs after Stop", pid)
	}
	var recorded []Boot
	if b, err := os.ReadFile(filepath.Join(labDir, "boots.json")); err != nil || json.Unmarshal(b, &recorded) != nil ||
		len(recorded) != 7 || recorded[6].End != EndStopped {
		t.Errorf("boots.json: %d boots, %v", len(recorded), err)
	}
	if err := pi.Stop(); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}

// TestLoopQemuFails: a qemu that exits by itself ends the loop with an error naming its log.
func TestLoopQemuFails(t *testing.T) {
	dir := t.TempDir()
	card := makeCard(t, dir)
	ctlDir := filepath.Join(dir, "ctl")
	os.Mkdir(ctlDir, 0o755)
	fake := filepath.Join(dir, "qemu")
	os.WriteFile(fake, []byte("#!/bin/sh\nPILAB_FAKE_QEMU="+ctlDir+" exec "+os.Args[0]+" \"$@\"\n"), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pi, err := Start(ctx, Config{Card: card, Dir: filepath.Join(dir, "lab"), Qemu: fake})
	if err != nil {
		t.Fatal(err)
	}
	defer pi.Stop()
	os.WriteFile(filepath.Join(ctlDir, "cmd"), []byte("crash"), 0o644)
	if _, err := pi.WaitBoot(ctx, 2); err == nil || !strings.Contains(err.Error(), "exited by itself") || !strings.Contains(err.Error(), "qemu.log") {
		t.Errorf("after qemu crashed: %v", err)
	}
	if b := pi.Boots()[0]; b.End != EndFailed {
		t.Errorf("boot 1 ended %s, want failed", b.End)
	}
}
