// Package failsummary reads the text output of go test and tells, for each failed test, what it
// said last. CI keeps only the head and the tail of a long log: a failure's message, printed at the
// end of a test's block behind hundreds of lines of progress, falls in the part that is cut. The
// summary goes at the very end of the output, where it is kept.
package failsummary

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Failure is one failed test and the last things it logged (its t.Fatal among them).
type Failure struct {
	Test    string   // "TestE2EDBHandoff" or "TestX/sub"
	Package string   // the package's FAIL line, when the output has it
	Last    []string // the test's last log entries, oldest first, each possibly several lines
}

var (
	failLine = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)
	// A log entry begins with the file and line of the t.Log call, indented once per level.
	entryLine = regexp.MustCompile(`^(\s+)[\w.-]+\.go:\d+: `)
	// A block ends at the next test's header, a package's result or go test's own lines.
	endLine = regexp.MustCompile(`^(\s*--- (FAIL|PASS|SKIP): |=== |ok\s|FAIL\s|FAIL$|PASS$|\?\s)`)
	pkgFail = regexp.MustCompile(`^FAIL\s+(\S+)`)
	// With -v, a test's entries follow the line that names it as the one now printing.
	headerLine = regexp.MustCompile(`^=== (?:RUN|CONT|NAME)\s+(\S+)`)
	maxLines   = 12
)

// Read returns the failures in r, each with up to entries of its last log entries, every entry
// cut to its first lines. Subtests that failed are reported on their own as well as their parent.
// r is go test's output with or without -v: without, a failed test's entries follow its
// "--- FAIL" line; with -v, they follow its "=== RUN", "=== CONT" or "=== NAME" lines, before it
// fails.
func Read(r io.Reader, entries int) ([]Failure, error) {
	var (
		tests   []Failure // every test that logged or failed, in order of appearance
		index   = map[string]int{}
		failed  []int    // indexes in tests of the failures, in the order they failed
		cur     = -1     // index in tests of the test whose block is being read
		current []string // the entry being read
		pending []int    // failures waiting for their package's FAIL line
	)
	test := func(name string) int {
		i, ok := index[name]
		if !ok {
			tests = append(tests, Failure{Test: name})
			i = len(tests) - 1
			index[name] = i
		}
		return i
	}
	flush := func() {
		if cur >= 0 && current != nil {
			f := &tests[cur]
			f.Last = append(f.Last, strings.Join(current, "\n"))
			if len(f.Last) > entries {
				f.Last = f.Last[len(f.Last)-entries:]
			}
		}
		current = nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := failLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = test(m[1])
			if !slices.Contains(failed, cur) {
				failed = append(failed, cur)
				pending = append(pending, cur)
			}
			continue
		}
		if m := headerLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = test(m[1])
			continue
		}
		if m := pkgFail.FindStringSubmatch(line); m != nil {
			for _, i := range pending {
				tests[i].Package = m[1]
			}
			pending = nil
		}
		if endLine.MatchString(line) {
			flush()
			cur = -1
			continue
		}
		if cur < 0 {
			continue
		}
		if entryLine.MatchString(line) {
			flush()
			current = []string{strings.TrimSpace(line)}
			continue
		}
		if current != nil {
			switch {
			case len(current) < maxLines:
				current = append(current, strings.TrimRight(line, " "))
			case len(current) == maxLines:
				current = append(current, "\t…")
			}
		}
	}
	flush()
	out := make([]Failure, 0, len(failed))
	for _, i := range failed {
		out = append(out, tests[i])
	}
	return out, sc.Err()
}

// Write prints failures as a summary for people: each test, its package, its last entries.
func Write(w io.Writer, failures []Failure) {
	if len(failures) == 0 {
		return
	}
	fmt.Fprintf(w, "\n=== what the %d failed test(s) said last\n", len(failures))
	for _, f := range failures {
		pkg := ""
		if f.Package != "" {
			pkg = " (" + f.Package + ")"
		}
		fmt.Fprintf(w, "\n--- %s%s\n", f.Test, pkg)
		if len(f.Last) == 0 {
			fmt.Fprintln(w, "    (it logged nothing)")
		}
		for _, e := range f.Last {
			for _, l := range strings.Split(e, "\n") {
				fmt.Fprintln(w, "    "+strings.TrimLeft(l, " \t"))
			}
		}
	}
	writeShort(w, failures)
}

// Short summary limits: the entries of each failed test it shows, their lines, a line's length.
const (
	shortEntries = 2
	shortLines   = 2
	shortWidth   = 200
)

// writeShort ends the summary with the gist of each failure: the first lines of the last entries
// of each failed test that has no failed subtest of its own (a parent only repeats its subtests'
// failure). The blocks above can be long enough (a console, a JSON status) for CI's kept tail to
// lose the first of them; this part is short enough to stay.
func writeShort(w io.Writer, failures []Failure) {
	fmt.Fprintln(w, "\n=== in short: the last words of each failed test")
	for _, f := range failures {
		if slices.ContainsFunc(failures, func(o Failure) bool { return strings.HasPrefix(o.Test, f.Test+"/") }) {
			continue
		}
		fmt.Fprintf(w, "--- %s\n", f.Test)
		for _, e := range f.Last[max(0, len(f.Last)-shortEntries):] {
			lines := strings.Split(e, "\n")
			for i, l := range lines[:min(len(lines), shortLines)] {
				l = strings.TrimLeft(l, " \t")
				if r := []rune(l); len(r) > shortWidth {
					l = string(r[:shortWidth]) + "…"
				}
				indent := "    "
				if i > 0 {
					indent = "      "
				}
				fmt.Fprintln(w, indent+l)
			}
		}
	}
}
