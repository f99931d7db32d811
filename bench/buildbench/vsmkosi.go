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

// mkosiConfig is mkosi 14's configuration of the same package set as drover's web role (the boot
// packages plus nginx) from the same mirror, as a root partition only: mkosi 14 needs loop mounts
// and vfat for an ESP and a boot loader, which this kind of machine lacks. WithDocs=yes because
// mkosi's WithDocs=no runs a command through systemd-nspawn, which fails without a system bus here;
// drover's base leaves documentation out, so mkosi unpacks more than drover does. mkosi 14 reads
// Packages= as a comma-separated list (a space-separated one is taken as one package's name).
const mkosiConfig = `[Distribution]
Distribution=debian
Release=bookworm
Mirror=http://deb.debian.org/debian

[Output]
Format=gpt_ext4
Bootable=no
Output=image.raw
OutputDirectory=mkosi.output

[Content]
WithDocs=yes
Packages=%s
`

// runVsMkosi measures issue 19's point 2: a cold build of web by drover (an empty cache and state
// directory, so the base tree, its .debs, the base filesystem image and everything after are made
// anew) against mkosi 14 building the same package set cold (its output and cache removed),
// alternating drover, mkosi, drover, mkosi... for n pairs, with the load average at each start. It
// appends a table with every run and drover's steps (from the manifest) to out.
func runVsMkosi(bin, example string, n int, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (mmdebstrap --mode=root, mkosi)")
	}
	if _, err := exec.LookPath("mkosi"); err != nil {
		return fmt.Errorf("mkosi not found (apt-get install mkosi): %w", err)
	}
	version, _ := exec.Command("mkosi", "--version").Output()
	b, fleetDir, cleanup, err := newBench(bin, example, "drover-bench-vsmkosi-")
	if err != nil {
		return err
	}
	defer cleanup()
	work := b.work
	mk := filepath.Join(work, "mkosi")
	pkgs := append(images.BootPackages("amd64"), "nginx")
	if err := os.MkdirAll(mk, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mk, "mkosi.default"), []byte(fmt.Sprintf(mkosiConfig, strings.Join(pkgs, ","))), 0o644); err != nil {
		return err
	}
	// web's two files, where its image block puts them (its run, systemctl enable nginx, is what
	// Debian's nginx package does already).
	for to, from := range map[string]string{"var/www/html/index.html": "web/index.html", "etc/nginx/sites-available/default": "web/site.conf"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mk, "mkosi.extra", to)), 0o755); err != nil {
			return err
		}
		if err := sh("cp", filepath.Join(fleetDir, from), filepath.Join(mk, "mkosi.extra", to)); err != nil {
			return err
		}
	}

	var drovers, mkosis []time.Duration
	var rows []string
	for i := 0; i < n; i++ {
		// drover: a new state directory and an empty cache (DROVER_CACHE_DIR) for every run.
		state, cache := filepath.Join(work, fmt.Sprintf("state-%d", i)), filepath.Join(work, fmt.Sprintf("cache-%d", i))
		load := loadAvg()
		d, err := b.droverEnv([]string{"DROVER_CACHE_DIR=" + cache}, filepath.Join(fleetDir, "drover.hcl"), state, "build", "web")
		if err != nil {
			return err
		}
		m, err := latest(state, "web")
		if err != nil {
			return err
		}
		drovers = append(drovers, d)
		rows = append(rows, fmt.Sprintf("| %d | drover | %s | %s | %s |", i+1, load, d.Round(100*time.Millisecond), steps(m)))
		fmt.Fprintf(os.Stderr, "pair %d: drover %s (load %s): %s\n", i+1, d.Round(100*time.Millisecond), load, steps(m))
		os.RemoveAll(state)
		os.RemoveAll(cache)

		// mkosi: no output, no package cache, no incremental cache (all under mkosi.output or mkosi.cache).
		for _, p := range []string{"mkosi.output", "mkosi.cache", "mkosi.workspace"} {
			os.RemoveAll(filepath.Join(mk, p))
		}
		if err := os.MkdirAll(filepath.Join(mk, "mkosi.output"), 0o755); err != nil {
			return err
		}
		load = loadAvg()
		cmd := exec.Command("mkosi", "-f", "build")
		cmd.Dir = mk
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("mkosi build: %w", err)
		}
		md := time.Since(start)
		mkosis = append(mkosis, md)
		rows = append(rows, fmt.Sprintf("| %d | mkosi | %s | %s | |", i+1, load, md.Round(100*time.Millisecond)))
		fmt.Fprintf(os.Stderr, "pair %d: mkosi %s (load %s)\n", i+1, md.Round(100*time.Millisecond), load)
	}
	s := fmt.Sprintf(`
## Cold build of web, drover against mkosi — %s

Machine: %d cores, %s; the load average (1, 5, 15 min) at each run's start is in the table (a
shared machine: other sessions' work runs beside it). go run ./bench/buildbench -vsmkosi %d:
alternating, each run from nothing. drover: `+"`drover build web`"+` of examples/homelab with an
empty state directory and DROVER_CACHE_DIR, building a GPT disk that boots under UEFI and BIOS
(ESP with GRUB and syslinux, ext4 root) with its manifest, SBOM and secret scan. mkosi (%s from
Debian): the same packages (%s) from the same mirror, Format=gpt_ext4, Bootable=no (a root partition
only, no ESP or boot loader), its output and cache removed before each run.

Medians: drover %s, mkosi %s (goal: drover <= mkosi).

| pair | tool | load at start | whole command | drover's steps of 50 ms or more (from the manifest) |
| --- | --- | --- | --- | --- |
%s
`, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), accel(), n, strings.TrimSpace(string(version)),
		strings.Join(pkgs, " "), median(drovers).Round(100*time.Millisecond), median(mkosis).Round(100*time.Millisecond),
		strings.Join(rows, "\n"))
	fmt.Print(s)
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}
