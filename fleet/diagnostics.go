package fleet

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostics are the problems found in a fleet file, with the sources needed to show them.
type Diagnostics struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

// HasErrors reports whether any diagnostic is an error (warnings do not stop drover).
func (d *Diagnostics) HasErrors() bool { return d != nil && d.Diags.HasErrors() }

// Errors counts the error diagnostics.
func (d *Diagnostics) Errors() int {
	n := 0
	for _, diag := range d.Diags {
		if diag.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// Error makes Diagnostics usable as an error: the first problem on one line, with a count of the rest.
func (d *Diagnostics) Error() string {
	if len(d.Diags) == 0 {
		return "fleet: no problems"
	}
	first := d.Diags[0]
	loc := ""
	if first.Subject != nil {
		loc = fmt.Sprintf("%s:%d:%d: ", first.Subject.Filename, first.Subject.Start.Line, first.Subject.Start.Column)
	}
	msg := fmt.Sprintf("fleet: %s%s", loc, strings.ToLower(first.Summary[:1])+first.Summary[1:])
	if n := len(d.Diags) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

// WriteText prints every diagnostic the way Terraform does, with file:line:col, the source line and
// a caret under the part at fault.
//
// At most MaxShownDiagnostics are printed in full, then a count of the rest: a file with thousands
// of problems is not a report anyone reads, and each source excerpt costs time (--output json
// carries them all).
func (d *Diagnostics) WriteText(w io.Writer) error {
	var buf bytes.Buffer
	lines := map[string][][]byte{} // each file split into lines once, not once per diagnostic
	for i, diag := range d.Diags {
		if i == MaxShownDiagnostics {
			fmt.Fprintf(&buf, "... and %d more problem(s) not shown; drover --output json validate lists them all.\n\n", len(d.Diags)-i)
			break
		}
		d.writeOne(&buf, diag, lines)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// MaxShownDiagnostics is how many diagnostics WriteText prints in full, and maxShownLine how
// much of a source line it shows.
const (
	MaxShownDiagnostics = 100
	maxShownLine        = 200
	maxShownDetail      = 1000
)

func (d *Diagnostics) writeOne(buf *bytes.Buffer, diag *hcl.Diagnostic, lines map[string][][]byte) {
	severity := "Error"
	if diag.Severity == hcl.DiagWarning {
		severity = "Warning"
	}
	fmt.Fprintf(buf, "%s: %s\n", severity, diag.Summary)
	if s := diag.Subject; s != nil {
		fmt.Fprintf(buf, "\n  on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column)
		file := d.Files[s.Filename]
		if file != nil {
			if nav, ok := file.Nav.(interface{ ContextString(int) string }); ok {
				if ctx := nav.ContextString(s.Start.Byte); ctx != "" {
					fmt.Fprintf(buf, ", in %s", ctx)
				}
			}
		}
		buf.WriteString(":\n")
		if file != nil {
			if _, ok := lines[s.Filename]; !ok {
				lines[s.Filename] = bytes.Split(file.Bytes, []byte("\n"))
			}
			writeSource(buf, lines[s.Filename], *s)
		}
	}
	if detail := diag.Detail; detail != "" {
		if len(detail) > maxShownDetail { // it quotes a huge value: the caret above shows where
			detail = strings.ToValidUTF8(detail[:maxShownDetail], "") + "..."
		}
		fmt.Fprintf(buf, "\n%s\n", detail)
	}
	buf.WriteString("\n")
}

// writeSource prints the subject's first line with carets under the subject (up to the line's end).
func writeSource(buf *bytes.Buffer, lines [][]byte, rng hcl.Range) {
	if rng.Start.Line < 1 || rng.Start.Line > len(lines) {
		return
	}
	line := strings.TrimRight(string(lines[rng.Start.Line-1]), "\r")
	start := min(max(rng.Start.Column-1, 0), len(line))
	end := len(line)
	if rng.End.Line == rng.Start.Line && rng.End.Column-1 <= len(line) {
		end = max(rng.End.Column-1, start)
	}
	if len(line) > maxShownLine {
		// A window of the line around the subject: a megabyte-long line is not shown whole.
		from := max(0, start-maxShownLine/4)
		to := min(len(line), from+maxShownLine)
		prefix, suffix := "", ""
		if from > 0 {
			prefix = "..."
		}
		if to < len(line) {
			suffix = "..."
		}
		line = prefix + line[from:to] + suffix
		start = start - from + len(prefix)
		end = min(end, to) - from + len(prefix)
	}
	gutter := fmt.Sprintf("%5d: ", rng.Start.Line)
	fmt.Fprintf(buf, "%s%s\n", gutter, line)
	pad := make([]byte, 0, start)
	for _, c := range []byte(line[:start]) {
		if c == '\t' {
			pad = append(pad, '\t')
		} else {
			pad = append(pad, ' ')
		}
	}
	width := end - start
	if width < 1 {
		width = 1
	}
	fmt.Fprintf(buf, "%s%s%s\n", strings.Repeat(" ", len(gutter)), pad, strings.Repeat("^", width))
}

// JSONDiagnostic is the --output json form of one diagnostic.
type JSONDiagnostic struct {
	Severity  string `json:"severity"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail,omitempty"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	EndLine   int    `json:"end_line,omitempty"`
	EndColumn int    `json:"end_column,omitempty"`
}

// JSON returns the diagnostics in their --output json form.
func (d *Diagnostics) JSON() []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, len(d.Diags))
	for _, diag := range d.Diags {
		j := JSONDiagnostic{Severity: "error", Summary: diag.Summary, Detail: diag.Detail}
		if diag.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if s := diag.Subject; s != nil {
			j.File, j.Line, j.Column, j.EndLine, j.EndColumn = s.Filename, s.Start.Line, s.Start.Column, s.End.Line, s.End.Column
		}
		out = append(out, j)
	}
	return out
}

// pos formats a range's start as file:line:col, the form every diagnostic uses.
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// dropEchoes removes HCL's "value must be known" diagnostics that only echo an error already reported
// at the same place (a failed function call or a missing variable yields an unknown value, which the
// decoder then complains about a second time).
func dropEchoes(diags hcl.Diagnostics) hcl.Diagnostics {
	out := diags[:0]
	for _, d := range diags {
		if d.Subject != nil && strings.Contains(d.Detail, "value must be known") && overlapsOtherError(diags, d) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func overlapsOtherError(diags hcl.Diagnostics, echo *hcl.Diagnostic) bool {
	for _, d := range diags {
		if d == echo || d.Severity != hcl.DiagError || d.Subject == nil || strings.Contains(d.Detail, "value must be known") {
			continue
		}
		if d.Subject.Filename == echo.Subject.Filename && d.Subject.Overlaps(*echo.Subject) {
			return true
		}
	}
	return false
}
