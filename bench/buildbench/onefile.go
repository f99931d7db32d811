package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/drover-dev/drover/images"
)

// runOneFile measures the one-file rebuild (issue 19: a new bootable raw image in at most 5 s): web is
// built once on the base-tree cache DROVER_CACHE_DIR points at (warm, so no base tree is made), then
// n times its page changes and web is rebuilt. It reports every rebuild's time and steps, the median,
// and the disk the state directory's catalog and the cache's base filesystem images use afterwards.
func runOneFile(bin, example string, n int, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (overlayfs, chroot)")
	}
	b, fleetDir, cleanup, err := newBench(bin, example, "drover-bench-onefile-")
	if err != nil {
		return err
	}
	defer cleanup()
	work := b.work
	fleetFile, state := filepath.Join(fleetDir, "drover.hcl"), filepath.Join(work, "state")
	first, err := b.drover(fleetFile, state, "build", "web")
	if err != nil {
		return err
	}
	page := filepath.Join(fleetDir, "web", "index.html")
	var times []time.Duration
	var lines []string
	for i := 0; i < n; i++ {
		if err := os.WriteFile(page, []byte(fmt.Sprintf("<h1>one-file bench %d %d</h1>\n", i, time.Now().UnixNano())), 0o644); err != nil {
			return err
		}
		d, err := b.drover(fleetFile, state, "build", "web")
		if err != nil {
			return err
		}
		times = append(times, d)
		m, err := latest(state, "web")
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("| %d | %s | %s |", i+1, d.Round(10*time.Millisecond), steps(m)))
		fmt.Fprintf(os.Stderr, "rebuild %d: %s\n", i+1, d.Round(10*time.Millisecond))
	}
	catalog, _ := duAllocated(filepath.Join(state, "images"))
	cacheDir := os.Getenv("DROVER_CACHE_DIR")
	if cacheDir == "" {
		cacheDir = filepath.Join(state, "cache")
	}
	baseImages, _ := duAllocated(filepath.Join(cacheDir, "rootfs"))
	kept, _ := os.ReadDir(filepath.Join(state, "images"))
	s := fmt.Sprintf(`
## drover build: one-file rebuilds of web — %s

Machine: %d cores, %s, load average %s at the end. The first build (%s) on the warm base-tree cache,
then %d rebuilds, each after changing web/index.html (go run ./bench/buildbench -onefile %d).

Median rebuild: %s (goal <= 5 s; every run: %s).

| rebuild | whole command | steps of 50 ms or more (from the manifest) |
| --- | --- | --- |
%s

Disk afterwards: the catalog %s for %d image(s) (keep_images default), the cache's base filesystem
images %s.
`, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), accel(), loadAvg(),
		first.Round(100*time.Millisecond), n, n, median(times).Round(10*time.Millisecond), list(times),
		strings.Join(lines, "\n"), mib(catalog), len(kept), mib(baseImages))
	fmt.Print(s)
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}

// latest is the newest image of role in the state directory's catalog.
func latest(state, role string) (*images.Manifest, error) {
	list, err := images.OpenCatalog(state).List()
	if err != nil {
		return nil, err
	}
	var newest *images.Manifest
	for _, m := range list {
		if m.Role == role && (newest == nil || m.Created.After(newest.Created)) {
			newest = m
		}
	}
	if newest == nil {
		return nil, fmt.Errorf("no %s image in the catalog", role)
	}
	return newest, nil
}

func steps(m *images.Manifest) string {
	var parts []string
	for _, s := range m.Steps {
		if s.Seconds >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.2f s", s.Name, s.Seconds))
		}
	}
	return strings.Join(parts, ", ")
}

// duAllocated is the space a directory's files take on disk (sparse files count what they use).
func duAllocated(dir string) (int64, error) {
	out, err := exec.Command("du", "-s", "--block-size=1", dir).Output()
	if err != nil {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(string(out), &n)
	return n, err
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
