package hostcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// toolCheck passes when every one of bins is found; why says what drover
// needs them for, so a failure explains itself.
func toolCheck(name, pkg, why string, bins ...string) check {
	return check{name: name, run: func(_ context.Context, o Options) Result {
		var found, missing []string
		for _, b := range bins {
			if p, ok := lookPath(b, o.PATH); ok {
				found = append(found, p)
			} else {
				missing = append(missing, b)
			}
		}
		if len(missing) > 0 {
			return Result{
				Status:   StatusFail,
				Detail:   fmt.Sprintf("%s not found (drover %s)", strings.Join(missing, ", "), why),
				Fix:      installFix(pkg),
				Packages: []string{pkg},
			}
		}
		return Result{Status: StatusOK, Detail: strings.Join(found, ", ")}
	}}
}

// anyToolCheck passes when any one of bins is found: either RFC 2136 client
// (Knot's knsupdate or BIND's nsupdate) speaks the same protocol.
func anyToolCheck(name, pkg, why string, bins ...string) check {
	return check{name: name, run: func(_ context.Context, o Options) Result {
		for _, b := range bins {
			if p, ok := lookPath(b, o.PATH); ok {
				return Result{Status: StatusOK, Detail: p}
			}
		}
		return Result{
			Status:   StatusFail,
			Detail:   fmt.Sprintf("none of %s found (drover %s)", strings.Join(bins, ", "), why),
			Fix:      installFix(pkg),
			Packages: []string{pkg},
		}
	}}
}

// checkOVMF looks for the UEFI firmware: drover's disks boot through GRUB as
// an EFI binary, so qemu needs OVMF to start them.
func checkOVMF(_ context.Context, o Options) Result {
	for _, p := range o.OVMFPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return Result{Status: StatusOK, Detail: p}
		}
	}
	return Result{
		Status:   StatusFail,
		Detail:   fmt.Sprintf("no UEFI firmware at %s (drover boots its disks under OVMF)", strings.Join(o.OVMFPaths, " or ")),
		Fix:      installFix("ovmf"),
		Packages: []string{"ovmf"},
	}
}

// fileCheck passes when every one of files exists: boot loader parts are data files, not commands.
func fileCheck(name, pkg, why string, files ...string) check {
	return check{name: name, run: func(_ context.Context, o Options) Result {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join("/", o.FileRoot, f)); err != nil {
				return Result{
					Status:   StatusFail,
					Detail:   fmt.Sprintf("%s not found (drover %s)", f, why),
					Fix:      installFix(pkg),
					Packages: []string{pkg},
				}
			}
		}
		return Result{Status: StatusOK, Detail: strings.Join(files, ", ")}
	}}
}
