package images

import (
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// IndexReuse lets WriteFileIndexReusing take a regular file's sha256 from the index of the tree the
// walked tree was copied from, instead of reading the file again.
type IndexReuse struct {
	// Base is the copied tree's index (ReadFileIndex: path -> "mode\tsha256").
	Base map[string]string
	// CopiedBefore is a change time the copy's files are older than: the ctime of a file written
	// right after the copy ended, on the same filesystem. Any later write, chmod or utimes of a file
	// gives it a ctime at or after this (userspace cannot set ctime), so a file with an older one
	// still has the content it was copied with.
	CopiedBefore time.Time
}

// WriteFileIndex walks a tree and writes, gzipped, one line per entry: path, mode and either the
// content's sha256 (regular files) or the link target (symlinks). images diff compares two of them.
func WriteFileIndex(root, out string) error { return WriteFileIndexReusing(root, out, nil) }

// WriteFileIndexReusing is WriteFileIndex that, with reuse, hashes only the regular files changed
// since the tree was copied; the index is the same either way. On failure out may be partly
// written; the caller owns it.
func WriteFileIndexReusing(root, out string, reuse *IndexReuse) error {
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
			if sum, ok := reuse.unchanged("/"+rel, info); ok {
				detail = sum
			} else if detail, err = FileSHA256(path); err != nil {
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

// unchanged returns the base index's sha256 for a regular file at path that has not changed since
// the copy: older change time, same mode.
func (r *IndexReuse) unchanged(path string, info fs.FileInfo) (string, bool) {
	if r == nil {
		return "", false
	}
	if ct := ChangeTime(info); ct.IsZero() || !ct.Before(r.CopiedBefore) {
		return "", false
	}
	mode, sum, ok := strings.Cut(r.Base[path], "\t")
	if !ok || mode != info.Mode().String() || len(sum) != 64 {
		return "", false
	}
	return sum, true
}

// ChangeTime is a file's ctime; zero where the platform does not say.
func ChangeTime(info fs.FileInfo) time.Time {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return time.Time{}
}
