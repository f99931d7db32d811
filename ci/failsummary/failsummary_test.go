package failsummary

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestReadFindsEachFailureAndWhatItSaidLast(t *testing.T) {
	got := readLog(t, "testdata/gotest.txt", "TestE2EDBHandoff@github.com/drover-dev/drover/cmd/drover "+
		"TestE2EVolumeMove@github.com/drover-dev/drover/plugins/compute/qemu "+
		"TestSuite@github.com/drover-dev/drover/plugins/compute/qemu "+
		"TestSuite/Delete@github.com/drover-dev/drover/plugins/compute/qemu")
	// The fatal and the cleanup after it, not the passing test's line nor the progress before.
	db := got[0].Last
	if len(db) != 2 || !strings.HasPrefix(db[0], "db_handoff_e2e_test.go:143: after the failed handoff") ||
		!strings.HasPrefix(db[1], "e2e_helpers_test.go:210: cleanup") {
		t.Errorf("TestE2EDBHandoff's last entries: %q", db)
	}
	// A multi-line entry keeps its continuation lines.
	vm := got[1].Last
	if len(vm) != 2 || !strings.Contains(vm[0], "no virtio_blk line") || !strings.Contains(vm[0], "localhost login:") {
		t.Errorf("TestE2EVolumeMove's last entries: %q", vm)
	}
	if sub := got[3].Last; len(sub) != 1 || !strings.Contains(sub[0], "want ErrNotFound") {
		t.Errorf("the subtest's entries: %q", sub)
	}
}

func TestReadCutsLongEntries(t *testing.T) {
	got, err := Read(strings.NewReader("--- FAIL: TestLong (1s)\n    a_test.go:1: start\n"+strings.Repeat("        more\n", 40)+"FAIL\n"), 4)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(got[0].Last[0], "\n")
	if len(lines) != maxLines+1 || lines[len(lines)-1] != "\t…" {
		t.Errorf("a 41-line entry became %d lines ending %q; want %d and a mark of the cut", len(lines), lines[len(lines)-1], maxLines+1)
	}
}

func TestWriteSaysEachTestAndItsEntries(t *testing.T) {
	var b bytes.Buffer
	Write(&b, []Failure{{Test: "TestA", Package: "example.com/p", Last: []string{"a_test.go:9: boom\n        detail"}}, {Test: "TestB"}})
	want := `
=== what the 2 failed test(s) said last

--- TestA (example.com/p)
    a_test.go:9: boom
    detail

--- TestB
    (it logged nothing)

=== in short: the last words of each failed test
--- TestA
    a_test.go:9: boom
      detail
--- TestB
`
	if b.String() != want {
		t.Errorf("Write printed\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	Write(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no failures printed %q", b.String())
	}
}

// TestReadVerbose reads go test -v's output (made by a real go test run): each test's entries come
// before its "--- FAIL" line, after the "=== RUN", "=== CONT" or "=== NAME" lines that name it.
// TestWriteShortSkipsParentsAndCuts: the short part names only the failed tests without failed
// subtests, with the first lines of their last two entries, long lines cut.
func TestWriteShortSkipsParentsAndCuts(t *testing.T) {
	var b bytes.Buffer
	long := strings.Repeat("x", 300)
	Write(&b, []Failure{
		{Test: "TestE2E", Last: []string{"a_test.go:1: MEASURE table\n  row"}},
		{Test: "TestE2E/sub", Last: []string{"a_test.go:2: first", "a_test.go:3: second\n  two\n  three", "a_test.go:4: " + long}},
	})
	_, short, ok := strings.Cut(b.String(), "=== in short: the last words of each failed test\n")
	if !ok {
		t.Fatalf("no short part in\n%s", b.String())
	}
	want := "--- TestE2E/sub\n    a_test.go:3: second\n      two\n    a_test.go:4: " + strings.Repeat("x", 200-len("a_test.go:4: ")) + "…\n"
	if short != want {
		t.Errorf("the short part is\n%s\nwant\n%s", short, want)
	}
}

func TestReadVerbose(t *testing.T) {
	got := readLog(t, "testdata/gotest-v.txt", "TestSub@example.com/fsv TestSub/Bad@example.com/fsv TestParallelFails@example.com/fsv")
	if sub := got[1].Last; len(sub) != 1 || sub[0] != "a_test.go:26: want ErrNotFound" {
		t.Errorf("the subtest's entries: %q", sub)
	}
	// Its last two entries, interleaved with the passing test's progress, not that progress.
	pf := got[2].Last
	if len(pf) != 2 || pf[0] != "a_test.go:12: still booting" || pf[1] != "a_test.go:13: health check failed:\n        connection refused" {
		t.Errorf("TestParallelFails's last entries: %q", pf)
	}
}

// readLog reads the go test output in path with two entries per failure, and checks that the
// failures are want: "Test@package", space-separated, in order.
func readLog(t *testing.T, path, want string) []Failure {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Read(f, 2)
	if err != nil {
		t.Fatal(err)
	}
	var tests []string
	for _, g := range got {
		tests = append(tests, g.Test+"@"+g.Package)
	}
	if strings.Join(tests, " ") != want {
		t.Fatalf("failures %q, want %q", strings.Join(tests, " "), want)
	}
	return got
}
