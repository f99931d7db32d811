// Package testnames checks a rule the test task relies on: its end-to-end pass runs only tests whose
// name holds E2E (-run E2E), so a test in an e2e-tagged file under another name would never run.
package testnames

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryE2ETestSaysE2E(t *testing.T) {
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || path == filepath.Join(root, "ci", "vault")) {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(src), "\n")
		if !strings.HasPrefix(first, "//go:build ") || !strings.Contains(first, "e2e") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		for _, decl := range f.Decls {
			name := funcName(decl)
			if strings.HasPrefix(name, "Test") && name != "TestMain" && !strings.Contains(name, "E2E") {
				t.Errorf("%s: %s is in an e2e file without E2E in its name: go tool task test (-run E2E) would never run it", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Errorf("found %d e2e test files, want at least 10: is the walk looking in the right place?", checked)
	}
}

func funcName(decl ast.Decl) string {
	if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil {
		return fd.Name.Name
	}
	return ""
}
