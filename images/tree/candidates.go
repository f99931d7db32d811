package tree

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"
)

// maxIndexBytes bounds one compressed Packages index read from a mirror (bookworm main amd64's
// Packages.gz is about 12 MB).
const maxIndexBytes = 256 << 20

// Candidates says which version of each package apt would install from spec's sources now: for
// every package the sources' Packages indexes list (every component, for spec's architecture,
// which includes Architecture: all), the newest version any source offers, which is apt's choice
// among sources of equal priority. It is what a refresh compares an image's packages with.
//
// A package that repos (third-party repositories, RepositoryOffers) offer is installed from them
// and not from the base's archives, so its candidate is theirs.
//
// Each index is checked against the sha256 its suite's Release file gives, and its parse is kept
// in Dir/indexes/<sha256>.gz, so asking again while the archive is unchanged reads only the
// Release files. It is safe for concurrent use (a cache entry is written whole, then renamed); a
// failure leaves at most a partial temporary file that no later call reads.
func (c *Cache) Candidates(ctx context.Context, spec BaseSpec, repos ...Repository) (map[string]string, error) {
	n, err := spec.Normalize()
	if err != nil {
		return nil, err
	}
	dir, err := c.indexDir()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, src := range n.Sources() {
		release, err := fetchRelease(ctx, src.URL, src.Suite)
		if err != nil {
			return nil, fmt.Errorf("tree: %w", err)
		}
		for _, comp := range n.Components {
			idx, err := c.packagesIndex(ctx, dir, src, release, comp+"/binary-"+n.Arch+"/Packages")
			if err != nil {
				return nil, err
			}
			for name, version := range idx {
				if have, ok := out[name]; !ok || CompareVersions(have, version) < 0 {
					out[name] = version
				}
			}
		}
	}
	if len(repos) == 0 {
		return out, nil
	}
	offers, err := c.RepositoryOffers(ctx, n.Arch, repos)
	if err != nil {
		return nil, err
	}
	for name, version := range offers {
		out[name] = version
	}
	return out, nil
}

// indexDir is where parsed Packages indexes are kept, made if need be.
func (c *Cache) indexDir() (string, error) {
	dir := filepath.Join(c.Dir, "indexes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("tree: package index cache: %w", err)
	}
	return dir, nil
}

// indexFile is one Packages index a Release file lists.
type indexFile struct{ sha256, path string }

// preferredIndexes are the forms of an index the Release file lists, in the order they are tried:
// gzip is the cheapest to read here, the uncompressed file the largest to download (and often not
// on the mirror even when listed).
func preferredIndexes(release, prefix string) []indexFile {
	var out []indexFile
	for _, suffix := range []string{".gz", ".xz", ""} {
		for _, e := range releaseIndexes(release, prefix) {
			f := strings.Fields(e)
			if f[2] == prefix+suffix {
				out = append(out, indexFile{sha256: f[0], path: f[2]})
			}
		}
	}
	return out
}

// packagesIndex returns the newest version of each package in one index of src, from the cache
// when an index with that sha256 was read before.
func (c *Cache) packagesIndex(ctx context.Context, dir string, src Source, release, prefix string) (map[string]string, error) {
	forms := preferredIndexes(release, prefix)
	if len(forms) == 0 {
		return nil, fmt.Errorf("tree: mirror %s suite %s lists no %s index in its Release file", src.URL, src.Suite, prefix)
	}
	for _, f := range forms {
		if idx, err := readCachedIndex(filepath.Join(dir, f.sha256+".gz")); err == nil {
			return idx, nil
		}
	}
	var lastErr error
	for _, f := range forms {
		body, err := readMirrorFile(ctx, src.URL, "dists/"+src.Suite+"/"+f.path)
		if errors.Is(err, fs.ErrNotExist) {
			lastErr = err
			continue // listed but not there: Debian lists the uncompressed index and serves only the others
		}
		if err != nil {
			return nil, fmt.Errorf("tree: mirror %s suite %s: %w", src.URL, src.Suite, err)
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != f.sha256 {
			return nil, fmt.Errorf("tree: mirror %s suite %s: %s does not match the sha256 its Release file gives (a mirror being updated: try again)", src.URL, src.Suite, f.path)
		}
		idx, err := parseIndex(body, f.path)
		if err != nil {
			return nil, fmt.Errorf("tree: mirror %s suite %s: %s: %w", src.URL, src.Suite, f.path, err)
		}
		if err := writeCachedIndex(filepath.Join(dir, f.sha256+".gz"), idx); err != nil {
			return nil, fmt.Errorf("tree: package index cache: %w", err)
		}
		return idx, nil
	}
	return nil, fmt.Errorf("tree: mirror %s suite %s: no form of %s could be read: %w", src.URL, src.Suite, prefix, lastErr)
}

// readMirrorFile reads one file of a mirror (http, https or file); a file that is not there is
// fs.ErrNotExist.
func readMirrorFile(ctx context.Context, mirror, rel string) ([]byte, error) {
	u, err := url.Parse(mirror)
	if err != nil {
		return nil, fmt.Errorf("invalid mirror %q: %w", mirror, err)
	}
	var r io.ReadCloser
	if u.Scheme == "file" {
		r, err = os.Open(filepath.Join(u.Path, rel))
	} else {
		r, err = httpGet(ctx, strings.TrimRight(mirror, "/")+"/"+rel)
		if err != nil && strings.HasSuffix(err.Error(), "HTTP 404") {
			err = fmt.Errorf("%w: %v", fs.ErrNotExist, err)
		}
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxIndexBytes+1))
	if err == nil && len(b) > maxIndexBytes {
		err = fmt.Errorf("%s is larger than %d bytes", rel, maxIndexBytes)
	}
	return b, err
}

// parseIndex reads a Packages index (compressed as its name says): the newest version of each
// package it lists.
func parseIndex(body []byte, name string) (map[string]string, error) {
	var r io.Reader = bytes.NewReader(body)
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		r = zr
	case strings.HasSuffix(name, ".xz"):
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		r = xr
	}
	idx := map[string]string{}
	var pkg, version string
	flush := func() {
		if pkg != "" && version != "" {
			if have, ok := idx[pkg]; !ok || CompareVersions(have, version) < 0 {
				idx[pkg] = version
			}
		}
		pkg, version = "", ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			pkg = strings.TrimSpace(line[len("Package: "):])
		case strings.HasPrefix(line, "Version: "):
			version = strings.TrimSpace(line[len("Version: "):])
		}
	}
	flush()
	return idx, sc.Err()
}

// The cache entry of an index is gzip'd lines "NAME VERSION".
func readCachedIndex(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	idx := map[string]string{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		name, version, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return nil, fmt.Errorf("%s: not a package index cache entry", path)
		}
		idx[name] = version
	}
	return idx, sc.Err()
}

func writeCachedIndex(path string, idx map[string]string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".index-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	zw := gzip.NewWriter(tmp)
	w := bufio.NewWriter(zw)
	for name, version := range idx {
		fmt.Fprintf(w, "%s %s\n", name, version)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
