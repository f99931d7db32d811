package images

import (
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileIndex walks a tree and writes, gzipped, one line per entry: path, mode and either the
// content's sha256 (regular files) or the link target (symlinks). images diff compares two of them.
func WriteFileIndex(root, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("images: file index: %w", err)
	}
	zw := gzip.NewWriter(f)
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		detail := ""
		switch {
		case info.Mode().IsRegular():
			if detail, err = FileSHA256(path); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			if detail, err = os.Readlink(path); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintf(zw, "/%s\t%s\t%s\n", rel, info.Mode(), detail)
		return err
	})
	if err := zw.Close(); err != nil && walkErr == nil {
		walkErr = err
	}
	if err := f.Close(); err != nil && walkErr == nil {
		walkErr = err
	}
	if walkErr != nil {
		return fmt.Errorf("images: file index of %s: %w", root, walkErr)
	}
	return nil
}
