package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin loads src (with a FIFO named pipe.fifo beside it) and fails the test if loading takes
// longer than a few seconds: hostile input must be refused, never waited on.
func loadWithin(t *testing.T, src string) *Diagnostics {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan *Diagnostics, 1)
	go func() {
		_, diags := Load(path, Options{Providers: testCatalog{}, Deploy: testDeployCatalog{}, LookupEnv: func(string) (string, bool) { return "", false }})
		done <- diags
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("Load hangs")
		return nil
	}
}

func wantDiagnostic(t *testing.T, diags *Diagnostics, summary, detail string) {
	t.Helper()
	for _, d := range diags.Diags {
		if d.Summary == summary && strings.Contains(d.Detail, detail) {
			return
		}
	}
	var b strings.Builder
	_ = diags.WriteText(&b)
	t.Errorf("no %q diagnostic with %q:\n%s", summary, detail, b.String())
}

// image is a role web whose image block holds lines.
func image(lines ...string) string {
	return "role \"web\" {\n  image {\n    " + strings.Join(lines, "\n    ") + "\n  }\n}\n"
}

// TestFIFOsAreRefused: a FIFO named by file(), a file block's source, a files map entry or a secret
// template is refused at once (reading one blocks until a writer comes).
func TestFIFOsAreRefused(t *testing.T) {
	for name, c := range map[string]struct{ src, summary, detail string }{
		"file()":    {image(`base = file("pipe.fifo")`), "Error in function call", "a named pipe (FIFO), not a regular file"},
		"source":    {image(`base = "debian-bookworm"`, `file "/etc/x" {`, `source = "pipe.fifo"`, `}`), "Not a file", "a named pipe (FIFO)"},
		"files map": {image(`base = "debian-bookworm"`, `files = { "/etc/x" = "pipe.fifo" }`), "Not a file", "a named pipe (FIFO)"},
		"template": {"vault {}\n" + image(`base = "debian-bookworm"`, `secret "x" {`, `path = "kv/data/web/x"`, `template = "pipe.fifo"`, `}`),
			"Not a file", "a named pipe (FIFO)"},
	} {
		t.Run(name, func(t *testing.T) { wantDiagnostic(t, loadWithin(t, c.src), c.summary, c.detail) })
	}
}

// TestFileReadIsBounded: file() of something larger than MaxReadFileSize is refused, and reads at
// most one byte more than the bound.
func TestFileReadIsBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxReadFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := readRegularFile(big, MaxReadFileSize); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("readRegularFile of a file over the bound = %v", err)
	}
	if b, err := readRegularFile(big, MaxReadFileSize+1); err != nil || len(b) != MaxReadFileSize+1 {
		t.Errorf("readRegularFile at the bound: %d bytes, %v", len(b), err)
	}
}

// TestComputedHugeNumber: a number too large to print, made by arithmetic (not a literal, which
// the token scan refuses), is range-checked without formatting it.
func TestComputedHugeNumber(t *testing.T) {
	src := `compute "t" "lab" {}
role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    count   = 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300
  }
}`
	start := time.Now()
	diags := loadWithin(t, src)
	wantDiagnostic(t, diags, "Value out of range", "a number of about 2^")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestUnknownVarIsAnError: --var of a variable the fleet does not declare is a diagnostic, with a
// suggestion.
func TestUnknownVarIsAnError(t *testing.T) {
	_, diags := load(t, goodFleet, Options{Vars: map[string]string{"domian": "x"}})
	wantDiagnostic(t, diags, "Undeclared variable", `Did you mean "domain"?`)
}

// TestHugeFormatWidthIsRefused: format() with a width that would allocate gigabytes fails.
func TestHugeFormatWidthIsRefused(t *testing.T) {
	diags := loadWithin(t, image(`base = format("%999999999d", 1)`))
	wantDiagnostic(t, diags, "Invalid function argument", "widths and precisions")
}

// TestNumbersCannotGrowWithoutBound: variables that square each other, and long products, are
// refused before any number grows too large to print.
func TestNumbersCannotGrowWithoutBound(t *testing.T) {
	src := "variable \"a\" { default = 1e300 }\n"
	prev := "a"
	for i := range 30 {
		name := fmt.Sprintf("v%d", i)
		src += fmt.Sprintf("variable %q { default = var.%s * var.%s }\n", name, prev, prev)
		prev = name
	}
	src += image(fmt.Sprintf("base = \"${var.%s}\"", prev))
	wantDiagnostic(t, loadWithin(t, src), "Number too large", "beyond about 1e300")

	long := "base = 1e300" + strings.Repeat(" * 1e300", 40)
	wantDiagnostic(t, loadWithin(t, image(long)), "Expression too long", "at most 32 times")
}

// TestHugeVarValueIsRefused: a --var of a number variable too large to print is refused.
func TestHugeVarValueIsRefused(t *testing.T) {
	src := "variable \"n\" {\n  type = number\n}\n" + image(`base = "${var.n}"`)
	_, diags := load(t, src, Options{Vars: map[string]string{"n": "1e99999999"}})
	wantDiagnostic(t, diags, "Invalid value for variable", "between about -1e300 and 1e300")
}

// TestManyProblemsPrintQuickly: thousands of diagnostics and megabyte-long lines print in bounded
// time and size: the first MaxShownDiagnostics in full, a window of each long line, then a count.
func TestManyProblemsPrintQuickly(t *testing.T) {
	var src strings.Builder
	src.WriteString(image(`base = "` + strings.Repeat("a", 1<<20) + `"`)) // shown first, in a window
	for i := range 5000 {
		fmt.Fprintf(&src, "role \"r%d\" {\n  image {\n    base = \"nope%d\"\n  }\n}\n", i, i)
	}
	diags := loadWithin(t, src.String())
	start := time.Now()
	var out strings.Builder
	if err := diags.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("printing %d diagnostics took %v", len(diags.Diags), d)
	}
	if n := strings.Count(out.String(), "\nError: ") + 1; n != MaxShownDiagnostics || !strings.Contains(out.String(), "and 4901 more problem(s) not shown") {
		t.Errorf("%d diagnostics printed in full, want %d and a count of the rest", n, MaxShownDiagnostics)
	}
	if out.Len() > 200<<10 {
		t.Errorf("the report is %d bytes", out.Len())
	}
}
