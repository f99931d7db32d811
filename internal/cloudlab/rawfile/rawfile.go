// Package rawfile makes the raw files the cloud lab's fakes keep a volume's bytes in (Vultr block
// storage, DigitalOcean volumes): sparse, so a 10 GiB volume costs what the guest wrote.
package rawfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Make creates path as a raw disk of sizeGB GiB: a copy of from (a snapshot's file) when given,
// grown to that size, else blank. It replaces a file already at path. A failure may leave a
// partial file at path, which the caller removes with the volume.
func Make(path, from string, sizeGB int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("rawfile: %w", err)
	}
	if from != "" {
		if err := Copy(path, from); err != nil {
			return err
		}
	} else if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("rawfile: %w", err)
	}
	if err := os.Truncate(path, int64(sizeGB)<<30); err != nil {
		return fmt.Errorf("rawfile: %w", err)
	}
	return nil
}

// Copy copies a sparse raw file keeping its holes (cp finds them with SEEK_DATA).
func Copy(dst, src string) error {
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("rawfile: copying %s: %w: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}
