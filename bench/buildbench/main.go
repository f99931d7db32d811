// Command buildbench measures drover build as a whole command against the floor of the same work done
// by hand (mmdebstrap of the same package set plus mkfs.ext4 -d of its tree), and appends the figures
// to bench/results.md with the date and the machine. go tool task bench runs it; it needs root.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/drover-dev/drover/images"
)

func main() {
	bin := flag.String("bin", "bin", "directory with drover and drover-boot-linux-amd64")
	example := flag.String("example", "examples/homelab", "the fleet directory to copy")
	runs := flag.Int("runs", 3, "runs per figure (the median is reported)")
	out := flag.String("out", "bench/results.md", "markdown file the results are appended to")
	onefile := flag.Int("onefile", 0, "instead: build web once on the warm base-tree cache (DROVER_CACHE_DIR), then this many one-file rebuilds, and report their times, steps and the disk they use")
	vsmkosi := flag.Int("vsmkosi", 0, "instead: this many pairs of cold builds of web, drover then mkosi (the same package set, root partition only), each from empty caches, and report both and drover's steps")
	flag.Parse()
	var err error
	switch {
	case *vsmkosi > 0:
		err = runVsMkosi(*bin, *example, *vsmkosi, *out)
	case *onefile > 0:
		err = runOneFile(*bin, *example, *onefile, *out)
	default:
		err = run(*bin, *example, *runs, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, work string
}

// newBench makes a work directory under /var/tmp named prefix... with a copy of the example fleet in
// it (fleetDir), for drover at bin. cleanup removes the work directory; on error nothing is left.
func newBench(bin, example, prefix string) (b *bench, fleetDir string, cleanup func(), err error) {
	bin, _ = filepath.Abs(bin)
	work, err := os.MkdirTemp("/var/tmp", prefix)
	if err != nil {
		return nil, "", nil, err
	}
	cleanup = func() { os.RemoveAll(work) }
	fleetDir = filepath.Join(work, "fleet")
	if err := sh("cp", "-a", example, fleetDir); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return &bench{bin: bin, work: work}, fleetDir, cleanup, nil
}

func run(bin, example string, runs int, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (mmdebstrap --mode=root)")
	}
	b, fleetDir, cleanup, err := newBench(bin, example, "drover-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	work := b.work
	fleetFile := filepath.Join(fleetDir, "drover.hcl")

	var cold, floor, rebuild, noop []time.Duration
	var state string
	for i := 0; i < runs; i++ {
		state = filepath.Join(work, fmt.Sprintf("state-%d", i))
		d, err := b.drover(fleetFile, state, "build", "web")
		if err != nil {
			return err
		}
		cold = append(cold, d)
		f, err := b.floor(i)
		if err != nil {
			return err
		}
		floor = append(floor, f)
		fmt.Fprintf(os.Stderr, "run %d: cold %s, floor %s\n", i+1, d.Round(time.Millisecond), f.Round(time.Millisecond))
	}
	// The last state directory keeps its images; db and dns join them for the no-op figure.
	if _, err := b.drover(fleetFile, state, "build", "db", "dns"); err != nil {
		return err
	}
	for i := 0; i < runs; i++ {
		d, err := b.drover(fleetFile, state, "build", "web", "db", "dns")
		if err != nil {
			return err
		}
		noop = append(noop, d)
	}
	page := filepath.Join(fleetDir, "web", "index.html")
	for i := 0; i < runs; i++ {
		if err := os.WriteFile(page, []byte(fmt.Sprintf("<h1>bench page %d</h1>\n", i)), 0o644); err != nil {
			return err
		}
		d, err := b.drover(fleetFile, state, "build", "web")
		if err != nil {
			return err
		}
		rebuild = append(rebuild, d)
	}
	list, err := images.OpenCatalog(state).List()
	if err != nil || len(list) == 0 {
		return fmt.Errorf("no image in the catalog: %v", err)
	}
	var web *images.Manifest
	for _, m := range list {
		if m.Role == "web" {
			web = m
			break
		}
	}
	return report(out, runs, cold, floor, noop, rebuild, web)
}

func (b *bench) drover(fleetFile, state string, args ...string) (time.Duration, error) {
	return b.droverEnv(nil, fleetFile, state, args...)
}

// droverEnv runs drover with env added to this process's environment.
func (b *bench) droverEnv(env []string, fleetFile, state string, args ...string) (time.Duration, error) {
	cmd := exec.Command(filepath.Join(b.bin, "drover"), append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	cmd.Env = append(append(os.Environ(), "DROVER_BOOT_DIR="+b.bin, "CI=true"), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

// floor is the same work without drover: mmdebstrap of the web role's package set into a fresh tree
// (no cache), then mkfs.ext4 -d of that tree into a file of the size drover would pick.
func (b *bench) floor(i int) (time.Duration, error) {
	tree := filepath.Join(b.work, fmt.Sprintf("floor-tree-%d", i))
	img := filepath.Join(b.work, fmt.Sprintf("floor-%d.ext4", i))
	defer os.RemoveAll(tree)
	defer os.Remove(img)
	pkgs := append(images.BootPackages("amd64"), "nginx")
	start := time.Now()
	// A plain mmdebstrap with dpkg's options for no fsync and no documentation, given as mmdebstrap
	// documents them: what a Debian tree costs made by hand. drover's own recipe does less
	// (images/tree/bootstrap.go: a short initramfs module list, no tar filter), so it can beat this.
	args := []string{"--mode=root", "--variant=apt", "--dpkgopt=force-unsafe-io", "--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/info/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright", "--include=" + strings.Join(pkgs, ","),
		"bookworm", tree, "http://deb.debian.org/debian"}
	if err := sh("mmdebstrap", args...); err != nil {
		return 0, err
	}
	size, err := duBytes(tree)
	if err != nil {
		return 0, err
	}
	mib := size*5/4/(1<<20) + 128
	if err := sh("mkfs.ext4", "-q", "-d", tree, img, fmt.Sprintf("%dM", mib)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func duBytes(dir string) (int64, error) {
	out, err := exec.Command("du", "-sb", dir).Output()
	if err != nil {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(string(out), &n)
	return n, err
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// median is the middle of ds, or the mean of the two middle ones when there are an even number.
func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func report(path string, runs int, cold, floor, noop, rebuild []time.Duration, web *images.Manifest) error {
	cpu := "unknown cpu"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mc, mf, mn, mr := median(cold), median(floor), median(noop), median(rebuild)
	var raw, qcow int64
	if a := web.Artifact("raw"); a != nil {
		raw = a.Size
	}
	if a := web.Artifact("qcow2"); a != nil {
		qcow = a.Size
	}
	s := fmt.Sprintf(`
## drover build — %s

Machine: %d cores (%s), %s. Median of %d runs; every run listed in brackets.

| figure | median | goal | runs |
| --- | --- | --- | --- |
| (a) cold build of web | %s = %.2fx the floor | <= 1.25x | %s |
| (a) floor: mmdebstrap of the same packages + mkfs.ext4 -d | %s | | %s |
| (b) no-op build of web, db, dns | %s | < 0.5 s | %s |
| (c) rebuild of web after a one-file change | %s = %.0f%% of the cold build | <= 5 s | %s |
| (d) web image: raw in use / qcow2 | %s / %s (raw length %s) | | |
`, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpu, accel(), runs,
		mc.Round(100*time.Millisecond), float64(mc)/float64(mf), list(cold),
		mf.Round(100*time.Millisecond), list(floor),
		mn.Round(time.Millisecond), list(noop),
		mr.Round(100*time.Millisecond), 100*float64(mr)/float64(mc), list(rebuild),
		mib(raw), mib(qcow), mib(web.Sizes.DiskBytes))
	fmt.Print(s)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}

func accel() string {
	if _, err := os.Stat("/dev/kvm"); err == nil {
		return "/dev/kvm present"
	}
	return "no KVM"
}

func list(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(10*time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
