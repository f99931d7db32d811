package hostcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// binfmtEntry is the binfmt_misc entry qemu-user-static registers for arm64.
const binfmtEntry = "qemu-aarch64"

// checkBinfmt checks that the kernel hands arm64 binaries to qemu-user:
// mmdebstrap builds the Raspberry Pi's arm64 tree by running its maintainer
// scripts through it. The package alone is not enough; binfmt_misc must be
// mounted and the entry enabled, which containers and fresh hosts often lack.
func checkBinfmt(_ context.Context, o Options) Result {
	var pkgs []string
	if _, ok := lookPath("qemu-aarch64-static", o.PATH); !ok {
		pkgs = append(pkgs, "qemu-user-static")
	}
	if _, ok := lookPath("update-binfmts", o.PATH); !ok {
		pkgs = append(pkgs, "binfmt-support")
	}
	// mmdebstrap refuses a foreign architecture without arch-test, whatever binfmt says.
	_, haveArchTest := lookPath("arch-test", o.PATH)
	if !haveArchTest {
		pkgs = append(pkgs, "arch-test")
	}
	mount := []string{"mount", "-t", "binfmt_misc", "binfmt_misc", o.BinfmtDir}
	enable := []string{"update-binfmts", "--enable", binfmtEntry}
	fail := func(detail string, cmds ...[]string) Result {
		return binfmtResult(detail, pkgs, cmds)
	}

	status, err := readFirstLine(filepath.Join(o.BinfmtDir, "status"))
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Sprintf("binfmt_misc is not mounted at %s; arm64 images cannot be built", o.BinfmtDir), mount, enable)
	}
	if err != nil {
		return fail(fmt.Sprintf("binfmt_misc at %s is unreadable (%v); arm64 images cannot be built", o.BinfmtDir, err), mount, enable)
	}
	if status != "enabled" {
		on := []string{"sh", "-c", "echo 1 > " + filepath.Join(o.BinfmtDir, "status")}
		return fail(fmt.Sprintf("binfmt_misc at %s is %q; arm64 images cannot be built", o.BinfmtDir, status), on, enable)
	}
	entry := filepath.Join(o.BinfmtDir, binfmtEntry)
	lines, err := readLines(entry)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Sprintf("no %s entry in %s; arm64 images cannot be built", binfmtEntry, o.BinfmtDir), enable)
	}
	if err != nil {
		return fail(fmt.Sprintf("reading %s: %v", entry, err), enable)
	}
	if len(lines) == 0 || lines[0] != "enabled" {
		return fail(fmt.Sprintf("%s is registered but not enabled; arm64 images cannot be built", entry), enable)
	}
	if !haveArchTest {
		return fail("arch-test is not installed; mmdebstrap needs it to build arm64 trees")
	}
	detail := entry + " enabled"
	for _, l := range lines[1:] {
		if interp, ok := strings.CutPrefix(l, "interpreter "); ok {
			detail += ", interpreter " + interp
		}
	}
	if len(pkgs) > 0 {
		// The kernel side works, so arm64 builds run; the missing tools
		// only matter for re-enabling the entry later.
		return Result{Status: StatusOK, Detail: detail + "; " + strings.Join(pkgs, ", ") + " not installed"}
	}
	return Result{Status: StatusOK, Detail: detail}
}

// binfmtResult builds the failing binfmt result with a Fix line that lists
// every step in the order Fix runs them.
func binfmtResult(detail string, pkgs []string, cmds [][]string) Result {
	var steps []string
	if len(pkgs) > 0 {
		steps = append(steps, installFix(pkgs...))
	}
	for _, c := range cmds {
		steps = append(steps, shellJoin(c))
	}
	return Result{
		Status:   StatusFail,
		Detail:   detail,
		Fix:      strings.Join(steps, " && "),
		Packages: pkgs,
		Commands: cmds,
	}
}

// readFirstLine returns the first line of a small /proc-style file.
func readFirstLine(path string) (string, error) {
	lines, err := readLines(path)
	if err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", nil
	}
	return lines[0], nil
}

// readLines returns the trimmed lines of a small /proc-style file. Its errors
// end up in a Result's Detail, never returned, so they carry no prefix.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return lines, nil
}
