// Package hostcheck is the logic behind `drover doctor`: it checks that the
// host can bake images and run the local lab (qemu, mmdebstrap, filesystem
// tools, OVMF, Knot, qemu-user binfmt for arm64, KVM, free disk space) and
// says, for each problem, which Debian packages and commands fix it.
//
// Every check reports instead of failing fast, so one run shows the user
// everything that is missing at once. Lookups of binaries and files go
// through Options, so tests can point them at fakes.
package hostcheck

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Status is the outcome of one check.
type Status string

// The three outcomes. Warn means drover works but worse (TCG instead of KVM,
// little disk space); fail means some drover command will not work.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Result is what one check found. It is JSON-tagged because
// `drover doctor --output json` prints a []Result as is.
type Result struct {
	// Name identifies the check ("mmdebstrap", "kvm", ...), stable across runs.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found: a path, an error, a measurement.
	Detail string `json:"detail,omitempty"`
	// Fix is a one-line human instruction, set whenever Status is not ok.
	Fix string `json:"fix,omitempty"`
	// Packages are the Debian packages whose installation fixes the check.
	Packages []string `json:"packages,omitempty"`
	// Commands are the extra commands, beyond installing Packages, that fix
	// the check (mounting binfmt_misc, enabling a binfmt entry), run as root.
	Commands [][]string `json:"commands,omitempty"`
}

// Command is one command Fix runs: Args[0] is the program, Env holds extra
// KEY=VALUE pairs added to the current environment.
type Command struct {
	Args []string
	Env  []string
}

// Runner runs one command, sending its output to out. It is a field of
// Options so tests can record what Fix would run instead of installing
// packages.
type Runner func(ctx context.Context, c Command, out io.Writer) error

// Options tunes Run and Fix. The zero value checks the real host.
type Options struct {
	// PATH is the list of directories searched for binaries, in $PATH form.
	// Empty means $PATH plus the sbin directories: mkfs.ext4, sfdisk, knotd
	// and update-binfmts live there, and a normal user's $PATH on Debian
	// lacks them even though drover can run them.
	PATH string
	// Dir is the directory whose file system must hold the image builds;
	// empty means the current directory. A directory that does not exist yet
	// is measured at its nearest existing parent.
	Dir string
	// OVMFPaths are the firmware files accepted, any one suffices; empty
	// means the files Debian's ovmf package installs.
	OVMFPaths []string
	// FileRoot prefixes the data files the boot-loader checks look for (tests point it at a fake
	// tree); empty means /.
	FileRoot string
	// BinfmtDir is where binfmt_misc is mounted; empty means
	// /proc/sys/fs/binfmt_misc.
	BinfmtDir string
	// KVMDevice is the KVM device node; empty means /dev/kvm.
	KVMDevice string
	// CheckTimeout bounds each check; empty means 30s. A check still running
	// then is reported as failed and abandoned.
	CheckTimeout time.Duration
	// ProbeTimeout bounds each qemu boot probe; empty means 10s. The probe
	// boots one sector that exits at once, so 10s only passes on a hang.
	ProbeTimeout time.Duration
	// Runner runs Fix's commands; nil runs them for real.
	Runner Runner
	// Geteuid reports the effective user id, for Fix's root test; nil means
	// os.Geteuid.
	Geteuid func() int
}

// Default values of Options fields.
const (
	DefaultCheckTimeout = 30 * time.Second
	DefaultProbeTimeout = 10 * time.Second
	DefaultBinfmtDir    = "/proc/sys/fs/binfmt_misc"
	DefaultKVMDevice    = "/dev/kvm"
	sbinDirs            = "/usr/local/sbin:/usr/sbin:/sbin"
)

// withDefaults fills every empty field, so checks never test for zero values.
func (o Options) withDefaults() Options {
	if o.PATH == "" {
		o.PATH = os.Getenv("PATH") + string(filepath.ListSeparator) + sbinDirs
	}
	if o.Dir == "" {
		o.Dir = "."
	}
	if len(o.OVMFPaths) == 0 {
		o.OVMFPaths = []string{"/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF_CODE.fd"}
	}
	if o.BinfmtDir == "" {
		o.BinfmtDir = DefaultBinfmtDir
	}
	if o.KVMDevice == "" {
		o.KVMDevice = DefaultKVMDevice
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.Runner == nil {
		o.Runner = execRunner
	}
	if o.Geteuid == nil {
		o.Geteuid = os.Geteuid
	}
	return o
}

// check is one named host check.
type check struct {
	name string
	run  func(ctx context.Context, o Options) Result
}

// checks lists every check in the order results are reported: tools first,
// then the host's kernel features, then space.
func checks() []check {
	return []check{
		toolCheck("qemu-system-x86_64", "qemu-system-x86", "boots images in the local lab", "qemu-system-x86_64"),
		toolCheck("qemu-img", "qemu-utils", "converts raw disks to qcow2", "qemu-img"),
		toolCheck("mmdebstrap", "mmdebstrap", "builds the Debian root trees", "mmdebstrap"),
		toolCheck("mkfs.ext4", "e2fsprogs", "makes the root file system without loop devices", "mkfs.ext4", "debugfs"),
		toolCheck("mtools", "mtools", "fills the EFI system partition", "mcopy", "mmd"),
		toolCheck("mkfs.vfat", "dosfstools", "makes the EFI system partition", "mkfs.vfat"),
		toolCheck("sfdisk", "fdisk", "partitions the disk images", "sfdisk"),
		fileCheck("grub-efi", "grub-efi-amd64-bin", "boots its disks under UEFI with GRUB", "/usr/lib/grub/x86_64-efi/linux.mod"),
		toolCheck("grub-mkimage", "grub-common", "builds the UEFI boot loader", "grub-mkimage"),
		toolCheck("syslinux", "syslinux", "boots its disks under BIOS", "syslinux"),
		fileCheck("gptmbr", "syslinux-common", "boots GPT disks under BIOS", "/usr/lib/syslinux/mbr/gptmbr.bin"),
		{name: "ovmf", run: checkOVMF},
		toolCheck("knot", "knot", "serves DNS for the lab's cutovers", "knotd", "keymgr"),
		anyToolCheck("knsupdate", "knot-dnsutils", "sends RFC 2136 updates to the lab DNS", "knsupdate", "nsupdate"),
		toolCheck("nsd", "nsd", "serves zone files for the zonefile DNS provider's tests", "nsd", "nsd-control"),
		{name: "binfmt-arm64", run: checkBinfmt},
		{name: "kvm", run: checkKVM},
		{name: "tcg", run: checkTCG},
		{name: "disk-space", run: checkDisk},
	}
}

// Run runs every check concurrently, each under its own time limit, and
// returns the results in a stable order. It never fails: a problem is a
// result.
func Run(ctx context.Context, opts Options) []Result {
	o := opts.withDefaults()
	cs := checks()
	results := make([]Result, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runOne(ctx, o, c)
		}()
	}
	wg.Wait()
	return results
}

// runOne runs c under o.CheckTimeout. A check blocked past its limit (statfs
// on a hung network mount, say) is abandoned rather than waited for, so
// doctor always answers.
func runOne(ctx context.Context, o Options, c check) Result {
	ctx, cancel := context.WithTimeout(ctx, o.CheckTimeout)
	defer cancel()
	done := make(chan Result, 1)
	go func() { done <- c.run(ctx, o) }()
	select {
	case r := <-done:
		r.Name = c.name
		return r
	case <-ctx.Done():
		return Result{
			Name:   c.name,
			Status: StatusFail,
			Detail: fmt.Sprintf("check did not finish: %v", context.Cause(ctx)),
			Fix:    "rerun drover doctor; if it keeps timing out, look for a hung mount or a stuck process",
		}
	}
}

// lookPath finds name in the directories of path, like exec.LookPath but
// with an explicit search path so tests (and the sbin fallback) need not
// touch the process environment.
func lookPath(name, path string) (string, bool) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// installFix is the Fix line for results fixed by installing packages.
func installFix(pkgs ...string) string {
	return "apt-get install " + strings.Join(pkgs, " ")
}
