package pilab

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The Pi's firmware reads two files before it starts a kernel: autoboot.txt on partition 1, which
// says which partition to boot, and that partition's config.txt, which names the kernel, the
// initramfs and the command line file. Both are read here as the firmware reads them: lines apply
// under conditional filters ("[all]", "[pi4]", "[tryboot]", ...); filters of one kind replace each
// other and filters of different kinds combine; "[all]" clears them all and "[none]" applies
// nothing until the next "[all]"; of a key given twice the last applying line wins. The emulated
// board is a Pi 4 Model B: "[pi4]" applies, other boards' filters do not, and filters on things it
// has none of (EDID, GPIO, serial numbers) do not either.

// Model is the board filter the emulated Pi answers to.
const Model = "pi4"

// boardFilters are config.txt's filters that select a board: one kind, so each replaces another.
var boardFilters = map[string]bool{
	"pi1": true, "pi2": true, "pi3": true, "pi3+": true, "pi4": true, "pi400": true, "pi5": true, "pi500": true,
	"pi0": true, "pi0w": true, "pi02": true, "cm4": true, "cm4s": true, "cm5": true,
}

// filterState tracks which lines of a firmware file apply.
type filterState struct {
	tryboot bool            // the one-time trial flag is set for this boot
	active  map[string]bool // filter kind -> whether its current filter matches
	none    bool            // "[none]" until the next "[all]"
}

func newFilterState(tryboot bool) *filterState {
	return &filterState{tryboot: tryboot, active: map[string]bool{}}
}

// section applies a "[filter]" line.
func (f *filterState) section(filter string) {
	filter = strings.ToLower(strings.TrimSpace(filter))
	switch {
	case filter == "all":
		f.active, f.none = map[string]bool{}, false
	case filter == "none":
		f.none = true
	case filter == "tryboot":
		f.active["tryboot"] = f.tryboot
	case boardFilters[filter] || strings.HasPrefix(filter, "board-type="):
		f.active["board"] = filter == Model
	default:
		// EDID=, gpioN=, HDMI:N, 0xSERIAL, partition=N...: the emulated board matches none of them.
		kind, _, _ := strings.Cut(filter, "=")
		f.active["other:"+kind] = false
	}
}

// applies reports whether the current line applies.
func (f *filterState) applies() bool {
	if f.none {
		return false
	}
	for _, ok := range f.active {
		if !ok {
			return false
		}
	}
	return true
}

// firmwareLines calls set for each "key=value" (or "directive value...") line of a firmware file
// that applies, in order. Comments start with '#'.
func firmwareLines(text string, tryboot bool, set func(key, value string)) {
	f := newFilterState(tryboot)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			f.section(line[1 : len(line)-1])
			continue
		}
		if !f.applies() {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, " \t") {
			set(strings.TrimSpace(k), strings.TrimSpace(v))
			continue
		}
		// A directive such as "initramfs FILE followkernel".
		k, v, _ := strings.Cut(line, " ")
		set(k, strings.TrimSpace(v))
	}
}

// Autoboot is what autoboot.txt tells the firmware.
type Autoboot struct {
	// Partition is the boot partition of this boot: boot_partition as it applies, 1 when none does.
	Partition int
	// TrybootAB is tryboot_a_b=1: a trial boot reads Partition's config.txt (the [tryboot] section
	// chooses the partition). Without it a trial boot reads tryboot.txt instead of config.txt.
	TrybootAB bool
}

// ParseAutoboot reads autoboot.txt for a boot with the one-time trial flag set (tryboot) or not.
func ParseAutoboot(text string, tryboot bool) (Autoboot, error) {
	a := Autoboot{Partition: 1}
	var err error
	firmwareLines(text, tryboot, func(k, v string) {
		switch k {
		case "boot_partition":
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 1 || n > 63 {
				err = fmt.Errorf("pilab: autoboot.txt: boot_partition=%q is not a partition number (1 to 63)", v)
				return
			}
			a.Partition = n
		case "tryboot_a_b":
			a.TrybootAB = v == "1"
		}
	})
	return a, err
}

// ConfigFile is the file the firmware reads on the boot partition: config.txt, or tryboot.txt on
// a trial boot without tryboot_a_b.
func (a Autoboot) ConfigFile(tryboot bool) string {
	if tryboot && !a.TrybootAB {
		return "tryboot.txt"
	}
	return "config.txt"
}

// BootFiles are what config.txt names, as paths on the boot partition.
type BootFiles struct {
	Kernel    string
	Initramfs string // "" for none
	Cmdline   string
}

// ParseConfig reads config.txt (or tryboot.txt) for the emulated board: kernel=, initramfs (the
// directive "initramfs FILE [followkernel]" or ramfsfile=), cmdline= and os_prefix=, with the
// firmware's defaults for a 64-bit Pi 4 (kernel8.img, cmdline.txt).
func ParseConfig(text string, tryboot bool) (BootFiles, error) {
	b := BootFiles{Kernel: "kernel8.img", Cmdline: "cmdline.txt"}
	prefix := ""
	firmwareLines(text, tryboot, func(k, v string) {
		switch k {
		case "kernel":
			b.Kernel = v
		case "initramfs":
			file, _, _ := strings.Cut(v, " ")
			b.Initramfs = file
		case "ramfsfile":
			b.Initramfs, _, _ = strings.Cut(v, ",")
		case "cmdline":
			b.Cmdline = v
		case "os_prefix":
			prefix = v
		}
	})
	for _, p := range []*string{&b.Kernel, &b.Initramfs} {
		if *p != "" {
			*p = prefix + *p
		}
	}
	for _, p := range []string{b.Kernel, b.Initramfs, b.Cmdline} {
		if slices.Contains(strings.Split(p, "/"), "..") || b.Kernel == "" || b.Cmdline == "" {
			return BootFiles{}, fmt.Errorf("pilab: config.txt names %q, which is not a file of the boot partition", p)
		}
	}
	return b, nil
}
