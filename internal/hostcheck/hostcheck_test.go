package hostcheck

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wantNames() is the stable order Run reports in.
func wantNames() []string {
	return []string{
		"qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "mtools", "mkfs.vfat",
		"sfdisk", "grub-efi", "grub-mkimage", "syslinux", "gptmbr", "ovmf", "knot", "knsupdate", "nsd",
		"binfmt-arm64", "kvm", "tcg", "disk-space",
	}
}

// writeFile writes content to dir/name with mode perm and returns the path.
func writeFile(t *testing.T, dir, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeBins makes a PATH directory holding a shell script for each name.
func fakeBins(t *testing.T, script string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		writeFile(t, dir, n, "#!/bin/sh\n"+script+"\n", 0o755)
	}
	return dir
}

// binfmtDir makes a fake binfmt_misc mount with the given status and, when
// entry is not empty, a qemu-aarch64 entry with that content.
func binfmtDir(t *testing.T, status, entry string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "status", status+"\n", 0o644)
	if entry != "" {
		writeFile(t, dir, binfmtEntry, entry, 0o644)
	}
	return dir
}

const enabledEntry = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n"

func byName(t *testing.T, rs []Result) map[string]Result {
	t.Helper()
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func names(rs []Result) []string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return n
}

func TestRunAllMissing(t *testing.T) {
	empty := t.TempDir()
	rs := Run(context.Background(), Options{
		PATH:      empty,
		Dir:       t.TempDir(),
		OVMFPaths: []string{filepath.Join(empty, "OVMF.fd")},
		FileRoot:  empty,
		BinfmtDir: empty,
		KVMDevice: filepath.Join(empty, "kvm"),
	})
	if got := names(rs); !slices.Equal(got, wantNames()) {
		t.Fatalf("names = %v, want %v", got, wantNames())
	}
	wantPkgs := map[string][]string{
		"qemu-system-x86_64": {"qemu-system-x86"},
		"qemu-img":           {"qemu-utils"},
		"mmdebstrap":         {"mmdebstrap"},
		"mkfs.ext4":          {"e2fsprogs"},
		"mtools":             {"mtools"},
		"mkfs.vfat":          {"dosfstools"},
		"sfdisk":             {"fdisk"},
		"grub-efi":           {"grub-efi-amd64-bin"},
		"grub-mkimage":       {"grub-common"},
		"syslinux":           {"syslinux"},
		"gptmbr":             {"syslinux-common"},
		"ovmf":               {"ovmf"},
		"knot":               {"knot"},
		"knsupdate":          {"knot-dnsutils"},
		"nsd":                {"nsd"},
		"binfmt-arm64":       {"qemu-user-static", "binfmt-support", "arch-test"},
		"tcg":                {"qemu-system-x86"},
	}
	m := byName(t, rs)
	for name, pkgs := range wantPkgs {
		r := m[name]
		if r.Status != StatusFail || !slices.Equal(r.Packages, pkgs) || r.Fix == "" {
			t.Errorf("%s = %+v, want fail with packages %v and a fix", name, r, pkgs)
		}
	}
	if r := m["kvm"]; r.Status != StatusWarn || !strings.Contains(r.Detail, "TCG") {
		t.Errorf("kvm = %+v, want a warning that drover falls back to TCG", r)
	}
	if r := m["qemu-img"]; r.Fix != "apt-get install qemu-utils" {
		t.Errorf("qemu-img fix = %q", r.Fix)
	}
	wantCmds := [][]string{
		{"mount", "-t", "binfmt_misc", "binfmt_misc", empty},
		{"update-binfmts", "--enable", "qemu-aarch64"},
	}
	if r := m["binfmt-arm64"]; !slices.EqualFunc(r.Commands, wantCmds, slices.Equal) {
		t.Errorf("binfmt commands = %q, want %q", r.Commands, wantCmds)
	}
}

func TestRunAllPresent(t *testing.T) {
	bins := fakeBins(t, "exit 3", // what qemu exits with when the probe guest ran
		"qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "mcopy", "mmd",
		"mkfs.vfat", "sfdisk", "knotd", "keymgr", "knsupdate", "nsd", "nsd-control", "qemu-aarch64-static", "update-binfmts", "arch-test",
		"debugfs", "grub-mkimage", "syslinux")
	other := t.TempDir()
	files := t.TempDir()
	for _, f := range []string{"usr/lib/grub/x86_64-efi/linux.mod", "usr/lib/syslinux/mbr/gptmbr.bin"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(files, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, files, f, "x", 0o644)
	}
	rs := Run(context.Background(), Options{
		PATH:      bins,
		FileRoot:  files,
		Dir:       t.TempDir(),
		OVMFPaths: []string{filepath.Join(other, "missing.fd"), writeFile(t, other, "OVMF_CODE.fd", "fw", 0o644)},
		BinfmtDir: binfmtDir(t, "enabled", enabledEntry),
		KVMDevice: writeFile(t, other, "kvm", "", 0o644),
	})
	for _, r := range rs {
		if r.Name == "disk-space" { // depends on this machine's disk
			continue
		}
		if r.Status != StatusOK || r.Fix != "" || len(r.Packages) > 0 {
			t.Errorf("%s = %+v, want ok", r.Name, r)
		}
	}
	if d := byName(t, rs)["ovmf"].Detail; !strings.HasSuffix(d, "OVMF_CODE.fd") {
		t.Errorf("ovmf detail = %q, want the second path", d)
	}
}

func TestToolChecksPartial(t *testing.T) {
	o := Options{PATH: fakeBins(t, "exit 0", "mcopy", "nsupdate", "knotd")}.withDefaults()
	for _, tc := range []struct {
		check      check
		status     Status
		detailPart string
	}{
		{toolCheck("mtools", "mtools", "x", "mcopy", "mmd"), StatusFail, "mmd not found"},
		{toolCheck("knot", "knot", "x", "knotd", "keymgr"), StatusFail, "keymgr not found"},
		{anyToolCheck("knsupdate", "knot-dnsutils", "x", "knsupdate", "nsupdate"), StatusOK, "nsupdate"},
	} {
		r := tc.check.run(context.Background(), o)
		if r.Status != tc.status || !strings.Contains(r.Detail, tc.detailPart) {
			t.Errorf("%s = %+v, want %s mentioning %q", tc.check.name, r, tc.status, tc.detailPart)
		}
	}
}

func TestLookPathSkipsNonExecutables(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "mmdebstrap", "not executable", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sfdisk"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"mmdebstrap", "sfdisk"} {
		if p, ok := lookPath(n, dir); ok {
			t.Errorf("lookPath(%s) = %s, want not found", n, p)
		}
	}
}

func TestBinfmt(t *testing.T) {
	enable := []string{"update-binfmts", "--enable", "qemu-aarch64"}
	tools := fakeBins(t, "exit 0", "qemu-aarch64-static", "update-binfmts", "arch-test")
	for _, tc := range []struct {
		name       string
		dir        string
		status     Status
		detailPart string
		lastCmd    []string
	}{
		{"not mounted", t.TempDir(), StatusFail, "not mounted", enable},
		{"all disabled", binfmtDir(t, "disabled", enabledEntry), StatusFail, `"disabled"`, enable},
		{"no entry", binfmtDir(t, "enabled", ""), StatusFail, "no qemu-aarch64 entry", enable},
		{"entry disabled", binfmtDir(t, "enabled", "disabled\ninterpreter /x\n"), StatusFail, "not enabled", enable},
		{"enabled", binfmtDir(t, "enabled", enabledEntry), StatusOK, "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkBinfmt(context.Background(), Options{PATH: tools, BinfmtDir: tc.dir})
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.detailPart) {
				t.Fatalf("got %+v, want %s mentioning %q", r, tc.status, tc.detailPart)
			}
			if len(r.Packages) > 0 {
				t.Errorf("packages = %v, want none: the tools are installed", r.Packages)
			}
			if tc.lastCmd == nil {
				return
			}
			if len(r.Commands) == 0 || !slices.Equal(r.Commands[len(r.Commands)-1], tc.lastCmd) {
				t.Errorf("commands = %q, want to end with %q", r.Commands, tc.lastCmd)
			}
			if !strings.Contains(r.Fix, "update-binfmts --enable qemu-aarch64") {
				t.Errorf("fix = %q", r.Fix)
			}
		})
	}
}

func TestDiskResult(t *testing.T) {
	for _, tc := range []struct {
		free uint64
		want Status
	}{
		{0, StatusFail},
		{2<<30 - 1, StatusFail},
		{2 << 30, StatusWarn},
		{10<<30 - 1, StatusWarn},
		{10 << 30, StatusOK},
		{500 << 30, StatusOK},
	} {
		r := diskResult("/srv", tc.free)
		if r.Status != tc.want || !strings.Contains(r.Detail, "/srv") || (r.Status != StatusOK) != (r.Fix != "") {
			t.Errorf("diskResult(%d) = %+v, want %s", tc.free, r, tc.want)
		}
	}
}

func TestCheckDiskMissingDirUsesParent(t *testing.T) {
	parent := t.TempDir()
	r := checkDisk(context.Background(), Options{Dir: filepath.Join(parent, ".drover", "cache")})
	if !strings.Contains(r.Detail, "free in "+parent) {
		t.Fatalf("got %+v, want the space of %s", r, parent)
	}
}

func TestRunOneAbandonsStuckCheck(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := check{name: "stuck", run: func(context.Context, Options) Result {
		<-release // ignores its context, like a statfs on a hung mount
		return Result{Status: StatusOK}
	}}
	o := Options{CheckTimeout: 50 * time.Millisecond}.withDefaults()
	start := time.Now()
	r := runOne(context.Background(), o, stuck)
	if r.Name != "stuck" || r.Status != StatusFail || !strings.Contains(r.Detail, "did not finish") {
		t.Fatalf("got %+v", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(Result{Name: "binfmt-arm64", Status: StatusFail, Detail: "d", Fix: "f",
		Packages: []string{"binfmt-support"}, Commands: [][]string{{"update-binfmts"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"binfmt-arm64","status":"fail","detail":"d","fix":"f","packages":["binfmt-support"],"commands":[["update-binfmts"]]}`
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
	if b, _ := json.Marshal(Result{Name: "kvm", Status: StatusOK}); string(b) != `{"name":"kvm","status":"ok"}` {
		t.Errorf("ok json = %s", b)
	}
}

// TestRunReal runs every check against this machine: whatever is installed,
// the results must be well-formed.
func TestRunReal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs := Run(ctx, Options{Dir: t.TempDir()})
	if got := names(rs); !slices.Equal(got, wantNames()) {
		t.Fatalf("names = %v, want %v", got, wantNames())
	}
	for _, r := range rs {
		t.Logf("%-18s %-4s %s", r.Name, r.Status, r.Detail)
		switch r.Status {
		case StatusOK:
			if r.Fix != "" || len(r.Packages) > 0 || len(r.Commands) > 0 {
				t.Errorf("%s: ok but has a fix: %+v", r.Name, r)
			}
		case StatusWarn, StatusFail:
			if r.Fix == "" {
				t.Errorf("%s: %s without a fix line", r.Name, r.Status)
			}
		default:
			t.Errorf("%s: status %q", r.Name, r.Status)
		}
		if r.Detail == "" {
			t.Errorf("%s: empty detail", r.Name)
		}
	}
	pkgs, cmds := FixPlan(rs)
	t.Logf("fix plan: packages %v, commands %q", pkgs, cmds)
}

// mmdebstrap refuses foreign architectures without arch-test even when binfmt works.
func TestBinfmtWantsArchTest(t *testing.T) {
	tools := fakeBins(t, "exit 0", "qemu-aarch64-static", "update-binfmts")
	r := checkBinfmt(context.Background(), Options{PATH: tools, BinfmtDir: binfmtDir(t, "enabled", enabledEntry)})
	if r.Status != StatusFail || !slices.Equal(r.Packages, []string{"arch-test"}) || !strings.Contains(r.Fix, "apt-get install arch-test") {
		t.Fatalf("got %+v, want fail asking for arch-test", r)
	}
}
