package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/scan"
)

// stepScan runs the secret scan (images/scan) over the tree after hygiene and before the disk is
// made: a finding fails the build, so no image with a secret in it reaches the catalog. It applies the
// default allowlist, the fleet's drover-scan-allow when there is one, and looks for the role's secret
// values when the request has them. Nothing to clean up: it only reads.
type stepScan struct{}

// maxListed is how many findings the error lists; the build log has them all.
const maxListed = 20

func (s *stepScan) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	opts := scan.Options{Forbidden: req.Forbidden}
	var allowlist []byte
	if req.ScanAllowlist != "" {
		content, err := os.ReadFile(req.ScanAllowlist)
		if err == nil {
			opts.AllowlistFile, allowlist = req.ScanAllowlist, content
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fail(state, fmt.Errorf("the secret scan's allowlist: %w", err))
		}
	}
	w := logWriter(state)
	var baseline *scanBaseline
	if changed := changedHint(state); changed != nil && req.Cache != nil && req.Cache.Dir != "" {
		b, err := openScanBaseline(req.Cache.Dir, state.Get(keyBase).(string), opts, allowlist, changed)
		if err != nil {
			fmt.Fprintf(w, "secret scan: no baseline of the base tree's files (%v): reading every file\n", err)
		} else {
			baseline = b
			opts.Reuse, opts.Record = b.reuse, b.record
		}
	}
	r, err := scan.Scan(ctx, treeDir(state), opts)
	if err != nil {
		return fail(state, err)
	}
	if baseline != nil {
		fmt.Fprintf(w, "secret scan: %d unchanged base file(s) not read again (their results are kept by base tree, rules and options)\n", baseline.reused())
		if err := baseline.save(); err != nil {
			fmt.Fprintf(w, "secret scan: keeping the base tree's results: %v\n", err)
		}
	}
	fmt.Fprintf(w, "secret scan: %d files, %d bytes, %d finding(s), %d allowlisted, %d secret value(s) looked for, in %s\n",
		r.FilesScanned, r.BytesScanned, len(r.Findings), r.Suppressed, r.ForbiddenChecked, r.Duration.Round(1e6))
	if r.ForbiddenSkipped > 0 {
		fmt.Fprintf(w, "secret scan: %d secret value(s) shorter than %d bytes not looked for\n", r.ForbiddenSkipped, scan.DefaultMinForbidden)
	}
	if len(r.Findings) > 0 {
		for _, f := range r.Findings {
			fmt.Fprintf(w, "secret scan: %s\n", f)
		}
		return fail(state, &ScanError{Findings: r.Findings, Allowlist: req.ScanAllowlist})
	}
	state.Put(keyScan, images.ScanStats{Files: r.FilesScanned, Bytes: r.BytesScanned, Allowlisted: r.Suppressed,
		ForbiddenValues: r.ForbiddenChecked})
	return multistep.ActionContinue
}

func (s *stepScan) Cleanup(multistep.StateBag) {}

// ScanError is a build stopped by the secret scan. Its message lists the findings (path, line, rule
// and a redacted excerpt: never a whole secret) and says how to go on.
type ScanError struct {
	Findings []scan.Finding
	// Allowlist is the allowlist file the build read, or would have read ("" when the build has no
	// fleet file, as under Packer).
	Allowlist string
}

func (e *ScanError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the secret scan found %d secret(s) in the image's tree:", len(e.Findings))
	for i, f := range e.Findings {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  ... and %d more (the build log lists them all)", len(e.Findings)-maxListed)
			break
		}
		fmt.Fprintf(&b, "\n  %s", f)
	}
	where := "an allowlist file"
	if e.Allowlist != "" {
		where = e.Allowlist
	}
	example := e.Findings[0].Rule + ":" + e.Findings[0].Path
	fmt.Fprintf(&b, "\nsecrets belong in Vault, fetched at boot (the role's image secrets), not in the image; "+
		"if a finding is harmless, add an allowlist entry to %s (RULE:PATH silences one rule at one place, such as %s)", where, example)
	return b.String()
}
