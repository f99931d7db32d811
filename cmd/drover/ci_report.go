package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
)

// ciTotals counts a run's roles by result.
type ciTotals map[string]int

func ciCount(run []*ciRole) ciTotals {
	t := ciTotals{}
	for _, cr := range run {
		t[cr.Result]++
	}
	return t
}

func (t ciTotals) failed() int { return t[ciFailed] + t[ciBlocked] }

// line is the run in one sentence: "3 role(s): 1 rolled out, 2 up to date".
func (t ciTotals) line(n int) string {
	var parts []string
	for _, r := range []struct{ key, say string }{
		{ciFailed, "failed"}, {ciBlocked, "blocked by a rollout in flight"}, {ciWaiting, "waiting for a promote"},
		{ciRolledOut, "rolled out"}, {ciBuilt, "built"}, {ciWouldBuild, "would be built"},
		{ciWouldStart, "would be rolled out"}, {ciSkipped, "skipped"}, {ciUpToDate, "up to date"},
	} {
		if t[r.key] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", t[r.key], r.say))
		}
	}
	return fmt.Sprintf("%d role(s): %s", n, strings.Join(parts, ", "))
}

// ciReport prints the run (text or the JSON object), appends the Markdown summary, and returns the
// run's exit code as a failure (nil for 0).
func (a *app) ciReport(c *cli.Context, f *fleet.Fleet, run []*ciRole, took time.Duration) error {
	totals := ciCount(run)
	code := exitOK
	switch {
	case totals.failed() > 0:
		code = exitFailure
	case totals[ciWaiting] > 0:
		code = exitWaiting
	}
	summary := totals.line(len(run))
	if path := c.String("summary"); path != "" {
		if err := appendFile(path, ciMarkdown(f, run, summary, took, c.Bool("dry-run"))); err != nil {
			return failed(fmt.Errorf("writing the summary to %s: %w", path, err), "check --summary (or GITHUB_STEP_SUMMARY)")
		}
	}
	if a.json() {
		writeJSON(a.stdout, map[string]any{"ok": code == exitOK, "exit_code": code, "dry_run": c.Bool("dry-run"),
			"summary": summary, "seconds": took.Seconds(), "roles": run})
	} else {
		a.ciText(run, summary, took)
	}
	switch code {
	case exitFailure:
		return &failure{code: code, printedJSON: a.json(), reason: "ci: " + summary, hint: "each failed role's line above says why; fix it and push again, or run the next commands given"}
	case exitWaiting:
		return &failure{code: code, printedJSON: a.json(), reason: "ci: " + summary, hint: "promote or roll back by hand with the commands above"}
	}
	return nil
}

func (a *app) ciText(run []*ciRole, summary string, took time.Duration) {
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tIMAGE\tRESULT\tROLLOUT\tDETAIL")
	for _, cr := range run {
		rollout := cr.Rollout
		if cr.State != "" {
			rollout += " (" + cr.State + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cr.Role, dash(images.ShortID(cr.Image)), cr.Result, dash(rollout), dash(firstLineOf(cr.Detail)))
	}
	tw.Flush()
	if lines := ciRefreshLines(run); len(lines) > 0 {
		fmt.Fprintln(a.stdout, "\nrefreshed:")
		for _, l := range lines {
			fmt.Fprintln(a.stdout, "  "+l)
		}
	}
	var next []string
	for _, cr := range run {
		next = append(next, cr.Next...)
	}
	if len(next) > 0 {
		fmt.Fprintln(a.stdout, "\nnext:")
		for _, n := range next {
			fmt.Fprintln(a.stdout, "  "+n)
		}
	}
	fmt.Fprintf(a.stdout, "\n%s (%s)\n", summary, round(took))
}

// ciMarkdown is the run as a Markdown section, for a CI's job summary.
func ciMarkdown(f *fleet.Fleet, run []*ciRole, summary string, took time.Duration, dry bool) string {
	var b strings.Builder
	title := "drover ci"
	if dry {
		title += " (dry run)"
	}
	fmt.Fprintf(&b, "## %s: %s\n\n", title, mdEscape(f.Path))
	if sha, ok := os.LookupEnv("GITHUB_SHA"); ok && sha != "" {
		fmt.Fprintf(&b, "Commit `%s`. ", sha)
	}
	fmt.Fprintf(&b, "%s, in %s.\n\n", summary, round(took))
	b.WriteString("| role | image | result | rollout | detail |\n|---|---|---|---|---|\n")
	for _, cr := range run {
		rollout := cr.Rollout
		if cr.State != "" {
			rollout += " (" + cr.State + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdEscape(cr.Role), mdCode(images.ShortID(cr.Image)), cr.Result, mdEscape(rollout), mdEscape(firstLineOf(cr.Detail)))
	}
	if lines := ciRefreshLines(run); len(lines) > 0 {
		b.WriteString("\nRefreshed:\n\n")
		for _, l := range lines {
			b.WriteString("- " + mdEscape(l) + "\n")
		}
	}
	var next []string
	for _, cr := range run {
		next = append(next, cr.Next...)
	}
	if len(next) > 0 {
		b.WriteString("\nNext:\n\n```sh\n" + strings.Join(next, "\n") + "\n```\n")
	}
	return b.String() + "\n"
}

// mdEscape keeps a value inside its table cell.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "") + "`"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// appendFile appends text to path, creating it (a CI's step summary file exists already).
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ciRefreshLines say, per role a refresh rebuilds, which packages the mirror offers in another
// version.
func ciRefreshLines(run []*ciRole) []string {
	var out []string
	for _, cr := range run {
		if cr.Refresh != nil {
			out = append(out, cr.Role+": "+cr.Refresh.Summary(5))
		}
	}
	return out
}
