// Package scan finds secrets in an image before it is baked (DESIGN.md §4 and §6): private keys,
// cloud and service tokens, passwords in well-known configuration files and high-entropy values
// assigned to names like API_KEY, in the root filesystem tree the builder holds before disk
// assembly. It also looks for given values (Options.Forbidden, a role's values from Vault) anywhere in
// a tree or a raw disk image, comparing bytes without ever printing them.
//
// Nothing this package returns or prints holds a whole secret: an excerpt shows at most the first
// four characters of what a rule matched, then "…[REDACTED]", and a forbidden value is named only by
// its position in Options.Forbidden and a sha256 prefix.
//
// What is scanned: every regular file of the tree, not following symbolic links. The pattern rules
// skip binary files (a NUL byte in the first 8 KiB), files larger than Options.MaxFileSize and paths
// an allowlist names; forbidden values are looked for in every regular file whatever its size or
// content. /proc, /sys and /dev at the tree's root are never entered. Compressed files are not
// opened: a secret inside a .gz is not found.
package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// Defaults of Options' zero values.
const (
	DefaultMaxFileSize  = 5 << 20 // bytes; larger files are checked for forbidden values only
	DefaultMinEntropy   = 3.5     // bits per character, for the generic-secret rule
	DefaultMinForbidden = 8       // bytes; shorter forbidden values are not looked for
	binaryProbe         = 8 << 10 // a NUL in this many first bytes makes a file binary
)

// Options tune a scan. The zero value scans with the rules, the default allowlist and no forbidden
// values.
type Options struct {
	// MaxFileSize is the size above which a file is not read by the pattern rules (it is still
	// searched for forbidden values). Zero means DefaultMaxFileSize.
	MaxFileSize int64
	// AllowlistFile is an allowlist file (see ParseAllowlist) to apply on top of the default one;
	// empty for none. A file that does not exist is an error.
	AllowlistFile string
	// Allowlist is an already parsed allowlist, applied on top of the default one and
	// AllowlistFile; nil for none.
	Allowlist *Allowlist
	// NoDefaultAllowlist drops the default allowlist of harmless Debian files (DefaultAllowlist).
	NoDefaultAllowlist bool
	// Forbidden are values that must appear nowhere: a role's secret values, for instance. They are
	// compared as bytes and never printed; a finding names a value only as "secret #N" (N counts
	// from 1 in this slice) and a sha256 prefix.
	Forbidden []secrets.Secret
	// MinForbiddenLen is the length (bytes) under which a forbidden value is not looked for,
	// because short values (a user name, a port) match everywhere. Zero means DefaultMinForbidden.
	// Report.ForbiddenSkipped counts the values left out.
	MinForbiddenLen int
	// MinEntropy is the Shannon entropy (bits per character) above which a value assigned to a
	// name ending in KEY, TOKEN, SECRET or PASSWORD is a finding of the generic-secret rule. Zero
	// means DefaultMinEntropy.
	MinEntropy float64
	// Workers is how many files are scanned at once. Zero means GOMAXPROCS.
	Workers int
	// Reuse, when set, is asked for each regular file of a tree scan (by its path in the tree)
	// before the file is read: a result it gives is counted as the file's, unread. It lets a scan
	// of a tree made from a base tree read only what changed (a result recorded with the same
	// Options for the same content is the result a read would give). Called from several
	// goroutines at once.
	Reuse func(rel string) (FileResult, bool)
	// Record, when set, is given each regular file's result of a tree scan, read or reused, one
	// call at a time.
	Record func(rel string, r FileResult)
}

// FileResult is what a tree scan found in one regular file (Options.Reuse, Options.Record).
type FileResult struct {
	Bytes      int64     `json:"b,omitempty"` // read from the file
	Skipped    bool      `json:"s,omitempty"` // not read by the pattern rules
	Suppressed int       `json:"a,omitempty"` // findings an allowlist silenced
	Findings   []Finding `json:"f,omitempty"`
}

// Finding is one secret found.
type Finding struct {
	// Path is where: the path inside the image ("/etc/app.env") for Scan, the file's path for
	// ScanFile.
	Path string `json:"path"`
	// Line is the 1-based line of a text file; 0 in a binary file or a disk image.
	Line int `json:"line,omitempty"`
	// Offset is the byte offset of the secret in the file (or disk image).
	Offset int64 `json:"offset"`
	// Rule is the name of the rule that matched (see Rules), or "forbidden-value".
	Rule string `json:"rule"`
	// Excerpt shows what matched, redacted: at most the first 4 characters of the secret, then
	// "…[REDACTED]".
	Excerpt string `json:"excerpt"`
}

// String is "PATH:LINE: RULE: EXCERPT".
func (f Finding) String() string {
	loc := f.Path
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.Path, f.Line)
	} else if f.Rule == RuleForbidden {
		loc = fmt.Sprintf("%s@%d", f.Path, f.Offset)
	}
	return fmt.Sprintf("%s: %s: %s", loc, f.Rule, f.Excerpt)
}

// Report is what a scan found and how much it read.
type Report struct {
	Findings []Finding `json:"findings"` // sorted by path, line, offset, rule
	// FilesScanned counts the regular files visited; BytesScanned the bytes read from them.
	FilesScanned int           `json:"files_scanned"`
	BytesScanned int64         `json:"bytes_scanned"`
	Duration     time.Duration `json:"duration_ns"`
	// FilesSkipped counts regular files the pattern rules did not read: binary, larger than
	// MaxFileSize, or allowlisted (forbidden values were still looked for in them).
	FilesSkipped int `json:"files_skipped"`
	// Suppressed counts findings an allowlist's RULE:GLOB lines silenced. (The pattern rules do
	// not read files under a path glob without a rule at all: those count in FilesSkipped.)
	Suppressed int `json:"suppressed"`
	// ForbiddenChecked and ForbiddenSkipped count the forbidden values looked for and those left
	// out for being shorter than MinForbiddenLen (or empty).
	ForbiddenChecked int `json:"forbidden_checked"`
	ForbiddenSkipped int `json:"forbidden_skipped"`
}

// String sums the report up in one line, then one line per finding.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d file(s), %d byte(s) scanned in %s: %d finding(s)", r.FilesScanned, r.BytesScanned,
		r.Duration.Round(time.Millisecond), len(r.Findings))
	if r.Suppressed > 0 {
		fmt.Fprintf(&b, ", %d allowlisted", r.Suppressed)
	}
	for _, f := range r.Findings {
		b.WriteString("\n")
		b.WriteString(f.String())
	}
	return b.String()
}

// skipDirs are never entered: kernel filesystems, empty mount points in a tree.
var skipDirs = map[string]bool{"/proc": true, "/sys": true, "/dev": true}

// Scan walks the tree at root and returns every finding. It returns an error when the tree or a file
// in it cannot be read (a scan that silently skipped a file would pass what it never saw), when the
// allowlist file is bad, or when ctx ends.
func Scan(ctx context.Context, root string, opts Options) (*Report, error) {
	start := time.Now()
	s, err := newScanner(opts)
	if err != nil {
		return nil, err
	}
	// The root itself may be a symbolic link (WalkDir would not enter it); nothing below it is
	// followed.
	root, err = filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("scan: %s is not a directory", root)
	}

	type job struct{ abs, rel string }
	jobs := make(chan job, 64)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := 0; i < s.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := s.newWorker()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := w.scanTreeFile(ctx, j.abs, j.rel); err != nil {
					cancel(err)
				}
			}
		}()
	}
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		rel = "/" + strings.TrimPrefix(filepath.ToSlash(rel), ".")
		if d.IsDir() {
			if skipDirs[rel] {
				return fs.SkipDir
			}
			// A whole directory allowlisted, with no forbidden values to look for: not entered.
			if rel != "/" && len(s.forbidden) == 0 && s.allow.skipsPath(rel) {
				s.addSkippedDir()
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks are not followed; devices, sockets and fifos hold no content
		}
		select {
		case jobs <- job{path, rel}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if walkErr != nil {
		return nil, walkErr
	}
	r := s.report()
	r.Duration = time.Since(start)
	return r, nil
}

// ScanFile searches one file, such as a raw disk image, for the forbidden values of opts (the pattern
// rules do not run: a disk is not text). It reads the file in chunks that overlap by the longest value,
// skipping the holes of a sparse file, and reports the first offset of each value found. With no
// forbidden value to look for it reads nothing and returns an empty report.
func ScanFile(ctx context.Context, path string, opts Options) (*Report, error) {
	start := time.Now()
	s, err := newScanner(opts)
	if err != nil {
		return nil, err
	}
	r := &Report{ForbiddenChecked: len(s.forbidden), ForbiddenSkipped: s.forbiddenSkipped}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("scan: %s is not a regular file", path)
	}
	if len(s.forbidden) > 0 {
		hits, n, err := s.streamForbidden(ctx, f, fi.Size())
		if err != nil {
			return nil, fmt.Errorf("scan: %s: %w", path, err)
		}
		r.BytesScanned = n
		for _, h := range hits {
			r.Findings = append(r.Findings, Finding{Path: path, Offset: h.offset, Rule: RuleForbidden, Excerpt: h.excerpt()})
		}
	}
	r.FilesScanned = 1
	sortFindings(r.Findings)
	r.Duration = time.Since(start)
	return r, nil
}

// scanner is one scan's settings and its results so far, shared by the workers.
type scanner struct {
	maxSize    int64
	minEntropy float64
	workers    int
	allow      *Allowlist
	forbidden  []forbiddenValue
	maxValLen  int

	forbiddenSkipped int

	reuse  func(string) (FileResult, bool)
	record func(string, FileResult)

	mu       sync.Mutex
	findings []Finding
	files    int
	bytes    int64
	skipped  int
	suppress int
}

func newScanner(opts Options) (*scanner, error) {
	s := &scanner{maxSize: opts.MaxFileSize, minEntropy: opts.MinEntropy, workers: opts.Workers, reuse: opts.Reuse, record: opts.Record}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxFileSize
	}
	if s.minEntropy <= 0 {
		s.minEntropy = DefaultMinEntropy
	}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	s.allow = &Allowlist{}
	if !opts.NoDefaultAllowlist {
		s.allow.add(DefaultAllowlist())
	}
	if opts.AllowlistFile != "" {
		a, err := LoadAllowlist(opts.AllowlistFile)
		if err != nil {
			return nil, err
		}
		s.allow.add(a)
	}
	if opts.Allowlist != nil {
		s.allow.add(opts.Allowlist)
	}
	s.forbidden, s.forbiddenSkipped = forbiddenValues(opts.Forbidden, opts.MinForbiddenLen)
	for _, v := range s.forbidden {
		s.maxValLen = max(s.maxValLen, len(v.value))
	}
	return s, nil
}

func (s *scanner) addSkippedDir() {
	s.mu.Lock()
	s.skipped++
	s.mu.Unlock()
}

func (s *scanner) report() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Report{Findings: s.findings, FilesScanned: s.files, BytesScanned: s.bytes, FilesSkipped: s.skipped,
		Suppressed: s.suppress, ForbiddenChecked: len(s.forbidden), ForbiddenSkipped: s.forbiddenSkipped}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	sortFindings(r.Findings)
	return r
}

func sortFindings(fs []Finding) {
	sort.Slice(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		return a.Rule < b.Rule
	})
}

// worker holds one goroutine's reusable buffers.
type worker struct {
	s     *scanner
	buf   []byte
	lower []byte
}

func (s *scanner) newWorker() *worker { return &worker{s: s} }

// scanTreeFile reads one regular file of the tree and applies the rules and the forbidden values.
func (w *worker) scanTreeFile(ctx context.Context, abs, rel string) error {
	s := w.s
	if s.reuse != nil {
		if r, ok := s.reuse(rel); ok {
			s.add(rel, r)
			return nil
		}
	}
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("scan: %s: %w", rel, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("scan: %s: %w", rel, unwrapPath(err))
	}
	size := fi.Size()
	allowlisted := s.allow.skipsPath(rel)
	var found []Finding
	var read int64
	skipped := false

	switch {
	case size > s.maxSize:
		skipped = true
		if len(s.forbidden) > 0 {
			hits, n, err := s.streamForbidden(ctx, f, size)
			if err != nil {
				return fmt.Errorf("scan: %s: %w", rel, err)
			}
			read = n
			for _, h := range hits {
				found = append(found, Finding{Path: rel, Offset: h.offset, Rule: RuleForbidden, Excerpt: h.excerpt()})
			}
		}
	default:
		want := int(size)
		switch {
		case len(s.forbidden) == 0 && allowlisted:
			want = 0 // nothing to look for in it
		case len(s.forbidden) == 0:
			want = min(want, binaryProbe) // read the probe first: a binary file needs no more
		}
		content, err := w.read(f, want)
		if err != nil {
			return fmt.Errorf("scan: %s: %w", rel, err)
		}
		binary := bytes.IndexByte(content[:min(len(content), binaryProbe)], 0) >= 0
		if !binary && !allowlisted && len(content) < int(size) {
			rest, err := w.readMore(f, int(size))
			if err != nil {
				return fmt.Errorf("scan: %s: %w", rel, err)
			}
			content = rest
		}
		read = int64(len(content))
		skipped = binary || allowlisted
		for _, h := range s.findForbidden(content) {
			fd := Finding{Path: rel, Offset: h.offset, Rule: RuleForbidden, Excerpt: h.excerpt()}
			if !binary {
				fd.Line = lineAt(content, int(h.offset))
			}
			found = append(found, fd)
		}
		if !skipped {
			w.lower = toLower(w.lower[:0], content)
			for _, m := range s.applyRules(rel, content, w.lower) {
				found = append(found, Finding{Path: rel, Line: lineAt(content, m.start), Offset: int64(m.start), Rule: m.rule, Excerpt: m.excerpt})
			}
		}
	}

	suppressed := 0
	kept := found[:0]
	for _, fd := range found {
		if s.allow.allows(fd.Rule, rel) {
			suppressed++
			continue
		}
		kept = append(kept, fd)
	}
	s.add(rel, FileResult{Bytes: read, Skipped: skipped, Suppressed: suppressed, Findings: append([]Finding(nil), kept...)})
	return nil
}

// add counts one file's result and hands it to Options.Record.
func (s *scanner) add(rel string, r FileResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files++
	s.bytes += r.Bytes
	if r.Skipped {
		s.skipped++
	}
	s.suppress += r.Suppressed
	s.findings = append(s.findings, r.Findings...)
	if s.record != nil {
		s.record(rel, r)
	}
}

// read reads the first n bytes of f into the worker's buffer.
func (w *worker) read(f *os.File, n int) ([]byte, error) {
	if cap(w.buf) < n {
		w.buf = make([]byte, n, max(n, 64<<10))
	}
	w.buf = w.buf[:n]
	got, err := io.ReadFull(f, w.buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, unwrapPath(err)
	}
	w.buf = w.buf[:got]
	return w.buf, nil
}

// readMore extends the buffer read so far to n bytes (the file shrank: what is there).
func (w *worker) readMore(f *os.File, n int) ([]byte, error) {
	have := len(w.buf)
	if cap(w.buf) < n {
		nb := make([]byte, have, n)
		copy(nb, w.buf)
		w.buf = nb
	}
	w.buf = w.buf[:n]
	got, err := io.ReadFull(f, w.buf[have:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, unwrapPath(err)
	}
	w.buf = w.buf[:have+got]
	return w.buf, nil
}

// unwrapPath drops the host path from an *fs.PathError: errors name the path in the image.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// lineAt is the 1-based line of the byte at off.
func lineAt(content []byte, off int) int {
	return 1 + bytes.Count(content[:min(off, len(content))], []byte{'\n'})
}

// toLower appends an ASCII-lower-cased copy of b to dst (same length, same offsets).
func toLower(dst, b []byte) []byte {
	if cap(dst) < len(b) {
		dst = make([]byte, 0, len(b))
	}
	dst = dst[:len(b)]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return dst
}
