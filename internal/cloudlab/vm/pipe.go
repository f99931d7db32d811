package vm

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// tcppipeSource is the one-file program qemu runs per guest connection to a guestfwd address.
//
//go:embed internal/tcppipe/main.go
var tcppipeSource []byte

// pipeProgram returns the path of the tcppipe binary, building it the first time. The binary is
// named by the digest of its source and of the Go toolchain, in the temporary directory, so every
// process of a test run (and every later run) shares one build. It is built beside and renamed into
// place, so concurrent callers never run a half-written file. Building needs the Go toolchain: the
// vm package is a test lab, run where `go test` runs.
func pipeProgram(ctx context.Context) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("vm: building tcppipe: no go toolchain in PATH: %w", err)
	}
	sum := sha256.Sum256(append(append([]byte(runtime.Version()+"\x00"), tcppipeSource...), runtime.GOARCH...))
	path := filepath.Join(os.TempDir(), "drover-cloudlab-tcppipe-"+hex.EncodeToString(sum[:8]))
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path, nil
	}
	src, err := os.MkdirTemp("", "drover-tcppipe-src-")
	if err != nil {
		return "", fmt.Errorf("vm: building tcppipe: %w", err)
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "main.go"), tcppipeSource, 0o644); err != nil {
		return "", fmt.Errorf("vm: building tcppipe: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module tcppipe\n\ngo 1.22\n"), 0o644); err != nil {
		return "", fmt.Errorf("vm: building tcppipe: %w", err)
	}
	tmp := filepath.Join(src, "tcppipe")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOOS=", "GOARCH=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("vm: building tcppipe: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("vm: building tcppipe: %w", err)
	}
	return path, nil
}
