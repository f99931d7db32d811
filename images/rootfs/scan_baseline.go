package rootfs

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/drover-dev/drover/images/scan"
)

// scanBaselineDir is where, in the tree cache's directory, the secret scan's per-file results of the
// base trees' files are kept.
const scanBaselineDir = "scan"

// scanBaseline makes the secret scan of a work tree read only what the build changed: the results
// of the base tree's files, recorded by an earlier scan with the same rules and options, are reused
// for every file the build did not change (changed says which it may have). The baseline is keyed by
// the base tree, the drover executable (its rules) and the scan's options (allowlist content and
// forbidden values), so a reused result is what reading the file would give. Its methods are safe
// for concurrent use.
type scanBaseline struct {
	path    string
	changed func(rel string) bool
	kept    map[string]scan.FileResult // read from path; never changed

	mu  sync.Mutex
	got map[string]scan.FileResult // this scan's results of unchanged files
}

// openScanBaseline finds the baseline for the base tree and options in cacheDir. A missing or
// unreadable baseline is an empty one: every file is read and the results are kept for next time.
func openScanBaseline(cacheDir, baseTree string, opts scan.Options, allowlist []byte, changed func(string) bool) (*scanBaseline, error) {
	h := sha256.New()
	if err := writeRulesVersion(h); err != nil {
		return nil, err
	}
	fmt.Fprintf(h, "\n%s\n%d\n%d\n%q\n", filepath.Base(baseTree), opts.MaxFileSize, opts.MinForbiddenLen, allowlist)
	for _, v := range opts.Forbidden {
		fmt.Fprintf(h, "%d:%s\n", len(v), v)
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	b := &scanBaseline{
		path:    filepath.Join(cacheDir, scanBaselineDir, filepath.Base(baseTree)+"-"+key+".json.gz"),
		changed: changed,
		kept:    map[string]scan.FileResult{},
		got:     map[string]scan.FileResult{},
	}
	if f, err := os.Open(b.path); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			var kept map[string]scan.FileResult
			if json.NewDecoder(zr).Decode(&kept) == nil {
				b.kept = kept
			}
		}
	}
	return b, nil
}

// writeRulesVersion writes what names the scan rules compiled into this program: the commit it was
// built from when the build says it had no local changes, or else the executable's own digest.
func writeRulesVersion(w io.Writer) error {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" && modified == "false" {
			_, err := fmt.Fprintf(w, "%s@%s\n", bi.Main.Path, rev)
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := os.Open(exe)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// reuse is scan.Options.Reuse: the kept result of a file the build did not change.
func (b *scanBaseline) reuse(rel string) (scan.FileResult, bool) {
	if b.changed(rel) {
		return scan.FileResult{}, false
	}
	r, ok := b.kept[rel]
	return r, ok
}

// record is scan.Options.Record: keeps the results of files the build did not change.
func (b *scanBaseline) record(rel string, r scan.FileResult) {
	if b.changed(rel) {
		return
	}
	b.mu.Lock()
	b.got[rel] = r
	b.mu.Unlock()
}

// save writes the baseline back when this scan read unchanged files it did not have (a temporary
// file renamed into place: concurrent builds each write a whole one). A failure only costs time.
func (b *scanBaseline) save() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	added := 0
	for rel := range b.got {
		if _, ok := b.kept[rel]; !ok {
			added++
		}
	}
	if added == 0 {
		return nil
	}
	all := make(map[string]scan.FileResult, len(b.kept)+added)
	for rel, r := range b.kept {
		all[rel] = r
	}
	for rel, r := range b.got {
		all[rel] = r
	}
	if err := os.MkdirAll(filepath.Dir(b.path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(b.path), "."+filepath.Base(b.path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	zw := gzip.NewWriter(tmp)
	err = json.NewEncoder(zw).Encode(all) // map keys are written sorted: the same results, the same file
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), b.path)
}

// reused counts the files whose results came from the baseline, for the build log.
func (b *scanBaseline) reused() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for rel := range b.got {
		if _, ok := b.kept[rel]; ok {
			n++
		}
	}
	return n
}
